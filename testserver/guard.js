'use strict';
// Preloaded with `node -r ./guard.js server.js`. Some requests make express-pouchdb throw
// outside any request handler (an anonymous `PUT /db` with admins configured, a
// `filter=_selector` body, see COUCHDB-SERVERS.md); by default Node then exits and every
// later test fails with "connection refused". Log the error and keep serving instead: the
// offending request gets no answer (its client times out), every other request works.

function report(kind) {
  return (err) => {
    const detail = err && err.stack ? err.stack : String(err);
    process.stderr.write(`[guard] ${new Date().toISOString()} ${kind}, server kept alive: ${detail}\n`);
  };
}

process.on('uncaughtException', report('uncaughtException'));
process.on('unhandledRejection', report('unhandledRejection'));
