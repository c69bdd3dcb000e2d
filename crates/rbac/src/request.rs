use crate::user::UserInfo;

/// What a request asks to do (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    /// A resource verb (get list watch create update patch delete
    /// deletecollection, or escalate, bind, impersonate, ...), or for
    /// non-resource requests the lower-cased HTTP method.
    pub verb: &'a str,
    pub resource_request: bool,
    /// `""` is the cluster scope.
    pub namespace: &'a str,
    /// `""` is the core group.
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    /// The URL path of a non-resource request, e.g. `/apis` or `/healthz`.
    pub path: &'a str,
}

impl<'a> Attributes<'a> {
    /// A resource request with no version, subresource or name; set those
    /// fields (or use the `with_` helpers) as needed.
    pub fn resource(
        user: &'a UserInfo,
        verb: &'a str,
        namespace: &'a str,
        api_group: &'a str,
        resource: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: true,
            namespace,
            api_group,
            api_version: "",
            resource,
            subresource: "",
            name: "",
            path: "",
        }
    }

    /// A request for a URL that is not a resource.
    pub fn non_resource(user: &'a UserInfo, verb: &'a str, path: &'a str) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: false,
            namespace: "",
            api_group: "",
            api_version: "",
            resource: "",
            subresource: "",
            name: "",
            path,
        }
    }

    pub fn with_name(self, name: &'a str) -> Attributes<'a> {
        Attributes { name, ..self }
    }

    pub fn with_subresource(self, subresource: &'a str) -> Attributes<'a> {
        Attributes {
            subresource,
            ..self
        }
    }
}

/// The authorizer's answer. `reason` says which binding allowed the request;
/// it is empty on a denial and for `system:masters`, as upstream's is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}
