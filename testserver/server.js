'use strict';
// CouchDB-compatible test server: express-pouchdb 4.2.0 on PouchDB 9.
//
// Why this and not pouchdb-server 4.2.0: PouchDB 9's _find uses CouchDB's default
// limit of 25, and PouchDB 9 is the faster of the two (see COUCHDB-SERVERS.md).
// package.json overrides express-pouchdb's own pouchdb-find 7 with 9.0.0.
//
// Usage (from a scratch working directory; express-pouchdb writes config.json and
// log.txt into its cwd):
//   TESTSERVER_ADMIN_USER=admin TESTSERVER_ADMIN_PASSWORD=pw \
//     node -r /path/to/guard.js /path/to/server.js --port 5984 [--data-dir DIR] \
//       [--host 127.0.0.1] [--log-level info] [--exit-with-pid PID] [--no-eventsource]
// Without --data-dir the databases live in memory; with it they are LevelDB files in DIR
// (leveldown's prebuilt binary ships inside its npm package, so --ignore-scripts is enough).
// Without the admin variables the server runs as an "admin party" (no auth at all).
//
// `_changes?feed=eventsource` is served as CouchDB 3.x serves it (eventsource.js), which
// PouchDB Server itself cannot do. --no-eventsource leaves that to express-pouchdb, which
// answers a normal feed as text/plain: a server without eventsource, for testing clients'
// fallback to feed=continuous.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const args = {
    host: '127.0.0.1',
    port: 5984,
    dataDir: null,
    logLevel: 'info',
    parentPid: 0,
    eventsource: true,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i];
    if (name === '--no-eventsource') {
      args.eventsource = false;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) {
      throw new Error(`missing value for ${name}`);
    }
    if (name === '--host') args.host = value;
    else if (name === '--port') args.port = Number.parseInt(value, 10);
    else if (name === '--data-dir') args.dataDir = path.resolve(value);
    else if (name === '--log-level') args.logLevel = value;
    else if (name === '--exit-with-pid') args.parentPid = Number.parseInt(value, 10);
    else throw new Error(`unknown argument ${name}`);
    i += 1;
  }
  if (!Number.isInteger(args.port) || args.port < 1 || args.port > 65535) {
    throw new Error('--port must be an integer between 1 and 65535');
  }
  return args;
}

// Compare credentials in constant time so the check itself leaks nothing.
function sameSecret(a, b) {
  const left = Buffer.from(String(a));
  const right = Buffer.from(String(b));
  return left.length === right.length && crypto.timingSafeEqual(left, right);
}

function parseBasicAuth(header) {
  const match = /^Basic\s+(\S+)$/i.exec(header || '');
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// CouchDB 3.x refuses anonymous access to databases (new databases are admin-only) while
// express-pouchdb lets anonymous requests through, and an anonymous `PUT /db` even crashes
// it. So every request except the public ones needs the admin's Basic credentials here.
const PUBLIC_PATHS = new Set(['/', '/_session', '/favicon.ico']);

function requireAdmin(admin) {
  return function checkCredentials(req, res, next) {
    if (PUBLIC_PATHS.has(req.path)) return next();
    const given = parseBasicAuth(req.headers.authorization);
    if (given && sameSecret(given.name, admin.name) && sameSecret(given.password, admin.password)) {
      return next();
    }
    res.status(401).json({
      error: 'unauthorized',
      reason: given ? 'Name or password is incorrect.' : 'Authentication required.',
    });
    return undefined;
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const adminName = process.env.TESTSERVER_ADMIN_USER || '';
  const adminPassword = process.env.TESTSERVER_ADMIN_PASSWORD || '';
  const admin = adminName ? { name: adminName, password: adminPassword } : null;

  const express = require('express');
  const expressPouchDB = require('express-pouchdb');
  const Auth = require('pouchdb-auth');
  // pouchdb-replication is needed even though nothing replicates: pouchdb-security wraps
  // db.replicate.to/from and fails on every database when they are missing.
  const PouchDB = require('pouchdb-core')
    .plugin(require('pouchdb-mapreduce'))
    .plugin(require('pouchdb-replication'));

  // Write config.json before express-pouchdb reads it, with the admin password already
  // hashed: express-pouchdb would otherwise hash it asynchronously after startup, and a
  // request arriving first would be checked against the plain text.
  const config = {
    log: { file: path.resolve('log.txt'), level: args.logLevel },
    httpd: { bind_address: args.host, port: args.port },
  };
  if (admin) {
    config.admins = await Auth.hashAdminPasswords({ [admin.name]: admin.password });
  }
  fs.writeFileSync('config.json', `${JSON.stringify(config, null, 2)}\n`);

  let ServerPouchDB;
  if (args.dataDir) {
    fs.mkdirSync(args.dataDir, { recursive: true });
    PouchDB.plugin(require('pouchdb-adapter-leveldb'));
    ServerPouchDB = PouchDB.defaults({ adapter: 'leveldb', prefix: args.dataDir + path.sep });
  } else {
    PouchDB.plugin(require('pouchdb-adapter-memory'));
    ServerPouchDB = PouchDB.defaults({ adapter: 'memory' });
  }

  const pouchApp = expressPouchDB(ServerPouchDB, {
    configPath: path.resolve('config.json'),
    // The tests replicate nothing and use no web UI; leaving these out saves a _replicator
    // database and the Fauxton files.
    overrideMode: { exclude: ['routes/fauxton', 'routes/replicate', 'replicator'] },
  });

  const app = express();
  app.disable('x-powered-by');
  if (admin) app.use(requireAdmin(admin));
  // After the credentials check (the feed needs them, as on CouchDB), before express-pouchdb.
  if (args.eventsource) {
    const { eventsourceChanges } = require('./eventsource');
    const serving = { PouchDB: ServerPouchDB, dbWrapper: pouchApp.dbWrapper };
    app.get('/:db/_changes', eventsourceChanges(serving));
  }
  app.use(pouchApp);

  const server = app.listen(args.port, args.host, () => {
    const where = args.dataDir ? `on disk in ${args.dataDir}` : 'in memory';
    const feeds = args.eventsource ? 'with' : 'without';
    console.log(
      `testserver listening on http://${args.host}:${args.port}/ (${where}, ${feeds} eventsource)`,
    );
  });
  server.on('error', (err) => {
    // Exit instead of lingering: a server that never bound its port must not look alive.
    console.error(`testserver cannot listen on ${args.host}:${args.port}: ${err.message}`);
    process.exit(2);
  });

  // LevelDB appends every write to its log file before answering, so an immediate exit
  // keeps the data; waiting for keep-alive sockets to close would only slow the tests.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => process.exit(0));
  }

  // A test run killed with SIGKILL cannot stop its server; this makes the server follow.
  if (args.parentPid > 0) {
    setInterval(() => {
      try {
        process.kill(args.parentPid, 0);
      } catch (err) {
        if (err.code === 'ESRCH') process.exit(0);
      }
    }, 1000).unref();
  }
}

main().catch((err) => {
  console.error(`testserver failed to start: ${err.stack || err}`);
  process.exit(2);
});
