// Validates an OpenAPI file with an independent implementation
// (@apidevtools/swagger-parser) and prints what the contract tests compare
// against a server's route table: for each path and method, the documented
// response status codes and the media types of each.
//   node openapi_peer.mjs FILE.yaml
// Exit 0 with one JSON line on stdout; exit 1 with the validator's message on stderr.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: node openapi_peer.mjs FILE.yaml");
  process.exit(2);
}
try {
  // validate() checks the file against the OpenAPI schema and resolves every $ref.
  const api = await SwaggerParser.validate(file);
  const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  const paths = {};
  for (const [path, item] of Object.entries(api.paths ?? {})) {
    paths[path] = {};
    for (const m of methods) {
      if (!item[m]) continue;
      const responses = {};
      for (const [status, r] of Object.entries(item[m].responses ?? {}))
        responses[status] = Object.keys(r.content ?? {});
      const security = item[m].security ?? api.security ?? [];
      paths[path][m.toUpperCase()] = { responses, secured: security.length > 0 };
    }
  }
  console.log(JSON.stringify({ openapi: api.openapi, paths }));
} catch (e) {
  console.error(`${file}: ${e.message}`);
  process.exit(1);
}
