//! `plinth user`: users of the embedded API server besides the admin. Each
//! gets a bearer token and a client certificate signed by Plinth's CA (CN
//! the user, O its groups), and a kubeconfig using one of them. What a user
//! may do is up to RBAC: bind it a role, e.g.
//! `kubectl create rolebinding alice-edit --clusterrole=edit --user=alice -n team-a`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use apiserver::users::{self, KubeconfigAuth};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::DataDirArgs;

#[derive(Args, Debug, Clone)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Issue a user new credentials (replacing any it had) and print its
    /// kubeconfig, or write it with --kubeconfig.
    Add(AddArgs),
    /// Revoke a user's token and certificate at once.
    Remove(RemoveArgs),
    /// List the users and their groups.
    List(DataDirArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AddArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The user name (the certificate's CN).
    pub name: String,
    /// A group the user is in (a certificate O); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The namespace the kubeconfig's context starts in.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Which credential the kubeconfig carries.
    #[arg(long, value_enum, default_value = "token")]
    pub auth: Auth,
    /// Write the kubeconfig here (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Auth {
    Token,
    Certificate,
}

#[derive(Args, Debug, Clone)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    pub name: String,
}

pub fn run(args: UserArgs) -> Result<()> {
    match args.command {
        UserCommand::Add(args) => add(args),
        UserCommand::Remove(args) => {
            let dir = args.data.resolve()?;
            if users::remove(&dir, &args.name)? {
                eprintln!(
                    "user {:?} removed; its token and certificate no longer work",
                    args.name
                );
                Ok(())
            } else {
                anyhow::bail!("there is no user {:?} in {}", args.name, dir.display())
            }
        }
        UserCommand::List(data) => {
            let dir = data.resolve()?;
            println!("{:<24} {:<12} GROUPS", "NAME", "NAMESPACE");
            for user in users::list(&dir)? {
                println!(
                    "{:<24} {:<12} {}",
                    user.name,
                    user.namespace.as_deref().unwrap_or("default"),
                    user.groups.join(",")
                );
            }
            Ok(())
        }
    }
}

fn add(args: AddArgs) -> Result<()> {
    let dir = args.data.resolve()?;
    let (server, ca) = apiserver::pki::server_of(&dir)?;
    let issued = users::add(&dir, &args.name, &args.groups, args.namespace.as_deref())?;
    let auth = match args.auth {
        Auth::Token => KubeconfigAuth::Token,
        Auth::Certificate => KubeconfigAuth::Certificate,
    };
    let text = users::kubeconfig(&server, &ca, &issued, auth);
    match &args.kubeconfig {
        Some(path) => {
            apiserver::pki::write_private(path, text.as_bytes())
                .with_context(|| format!("cannot write the kubeconfig {}", path.display()))?;
            eprintln!(
                "user {:?} added; kubeconfig: {} (it may do nothing until a RoleBinding grants it a role)",
                args.name,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
