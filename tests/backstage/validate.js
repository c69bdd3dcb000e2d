#!/usr/bin/env node
// Validate a multi-document Backstage catalog YAML file with Backstage's own
// @backstage/catalog-model validators, then check that every spec.dependsOn
// reference resolves to an entity defined in the same file.
//
// Usage: node validate.js <catalog.yaml>
// Exit codes: 0 = all valid, 1 = invalid entity / unresolved ref, 2 = usage/IO/YAML error.
'use strict';

const fs = require('fs');
const YAML = require('yaml');
const {
  EntityPolicies,
  SchemaValidEntityPolicy,
  DefaultNamespaceEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  FieldFormatEntityPolicy,
  makeValidator,
  entityEnvelopeSchemaValidator,
  entitySchemaValidator,
  apiEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  parseEntityRef,
  stringifyEntityRef,
} = require('@backstage/catalog-model');

function fail(code, msg) {
  process.stderr.write(`INVALID: ${msg}\n`);
  process.exit(code);
}

const file = process.argv[2];
if (!file) fail(2, 'usage: node validate.js <catalog.yaml>');

let text;
try {
  text = fs.readFileSync(file, 'utf8');
} catch (e) {
  fail(2, `cannot read ${file}: ${e.message}`);
}

// Same policy set and order as the catalog backend's CatalogBuilder.buildEntityPolicy()
// (plugins/catalog-backend/src/service/CatalogBuilder.ts).
const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(makeValidator()),
]);
const validateEnvelope = entityEnvelopeSchemaValidator();
const validateEntity = entitySchemaValidator();
// Same approach as BuiltinKindsEntityProcessor.validateEntityKind(): the entity is
// accepted if any kind validator returns true. check() returns false when kind /
// apiVersion simply do not match that validator, and throws on real schema errors.
const kindValidators = [
  ['API', apiEntityV1alpha1Validator],
  ['Resource', resourceEntityV1alpha1Validator],
  ['Component', componentEntityV1alpha1Validator],
];

function label(i, raw) {
  const k = raw && typeof raw === 'object' ? raw.kind : undefined;
  const n = raw && typeof raw === 'object' && raw.metadata ? raw.metadata.name : undefined;
  return `document #${i + 1}${k || n ? ` (${k ?? '?'}:${n ?? '?'})` : ''}`;
}

async function main() {
  // Same YAML handling as the catalog backend's parseEntityYaml():
  // per-document parse errors fail, null documents are skipped, non-objects fail.
  const docs = YAML.parseAllDocuments(text);
  const raws = [];
  docs.forEach((doc, i) => {
    if (doc.errors && doc.errors.length) {
      fail(2, `document #${i + 1}: YAML parse error: ${doc.errors[0].message}`);
    }
    const json = doc.toJSON();
    if (json === null || json === undefined) return;
    if (typeof json !== 'object' || Array.isArray(json)) {
      fail(1, `document #${i + 1}: expected an object at root, got ${Array.isArray(json) ? 'array' : typeof json}`);
    }
    raws.push([i, json]);
  });
  if (raws.length === 0) fail(1, `${file}: no entities found`);

  const entities = []; // [label, entity]
  const byRef = new Map();
  for (const [i, raw] of raws) {
    const where = label(i, raw);
    let entity;
    try {
      validateEnvelope(raw);
      entity = await policy.enforce(raw);
      validateEntity(entity);
    } catch (e) {
      fail(1, `${where}: ${e.message}`);
    }
    let matched = false;
    for (const [, v] of kindValidators) {
      try {
        if (await v.check(entity)) {
          matched = true;
          break;
        }
      } catch (e) {
        fail(1, `${where}: kind ${entity.kind} schema: ${e.message}`);
      }
    }
    if (!matched) {
      fail(
        1,
        `${where}: no kind validator accepted apiVersion=${entity.apiVersion} kind=${entity.kind} ` +
          `(supported: ${kindValidators.map(([k]) => k).join(', ')} with backstage.io/v1alpha1|v1beta1)`,
      );
    }
    const ref = stringifyEntityRef(entity); // lower-cased kind:namespace/name
    if (byRef.has(ref)) fail(1, `${where}: duplicate entity ${ref} (also ${byRef.get(ref)})`);
    byRef.set(ref, where);
    entities.push([where, entity]);
  }

  // dependsOn resolution. Backstage (BuiltinKindsEntityProcessor) parses spec.dependsOn
  // with { defaultNamespace: <entity's namespace> } and NO defaultKind, so the kind
  // prefix is mandatory: "resource:db" / "component:ns/x"; a bare "db" is an error.
  let depCount = 0;
  for (const [where, entity] of entities) {
    const deps = entity.spec && entity.spec.dependsOn;
    if (deps === undefined) continue;
    for (const dep of deps) {
      let parsed;
      try {
        parsed = parseEntityRef(dep, { defaultNamespace: entity.metadata.namespace });
      } catch (e) {
        fail(1, `${where}: spec.dependsOn "${dep}": ${e.message}`);
      }
      const target = stringifyEntityRef(parsed);
      if (!byRef.has(target)) {
        fail(1, `${where}: spec.dependsOn "${dep}" -> ${target} does not resolve to an entity in ${file}`);
      }
      depCount++;
    }
  }

  const kinds = {};
  for (const [, e] of entities) kinds[e.kind] = (kinds[e.kind] || 0) + 1;
  const breakdown = Object.entries(kinds).map(([k, n]) => `${k}=${n}`).join(', ');
  process.stdout.write(
    `OK: ${entities.length} entities valid (${breakdown}); ${depCount} dependsOn refs resolved\n`,
  );
}

main().catch(e => fail(2, `unexpected error: ${e && e.stack ? e.stack : e}`));
