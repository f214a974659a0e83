// Validates an AsyncAPI document with the official parser (@asyncapi/parser, installed into
// .cache/asyncapi by scripts/setup.sh): prints every diagnostic as a JSON line, exits 1 on any error.
// Usage: node scripts/asyncapi_validate.mjs contracts/asyncapi.json
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.ASYNCAPI_PARSER_DIR + '/');
const { Parser } = require('@asyncapi/parser');
const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], 'utf8'));
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path.join('/') }));
}
process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
