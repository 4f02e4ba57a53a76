'use strict';
// `GET /:db/_changes?feed=eventsource` as CouchDB 3.x serves it. express-pouchdb 4.2.0 has no
// eventsource feed (it answers a normal feed as text/plain), so without this the
// replicator's eventsource path could only be tested against mocks.
//
// What CouchDB does (src/chttpd/src/chttpd_db.erl, changes_callback for feed=eventsource,
// and parse_changes_query), and so what this does:
// - headers `Content-Type: text/event-stream`, `Cache-Control: no-cache`, chunked;
// - each change: "data: <row JSON>\nid: <JSON of its seq>\n\n". The id is the *JSON* of the
//   seq: CouchDB's string seqs arrive quoted (`id: "7-g1A…"`), PouchDB's integers bare (`7`);
// - once caught up with nothing sent yet, a lone "\n" (its waiting_for_updates callback);
// - with `heartbeat=ms`, "event: heartbeat\ndata: \n\n" after that long without a change;
// - without `heartbeat`, the stream just ends (no last_seq row) after `timeout` ms without
//   a change, at most 60 s (CouchDB's default [chttpd] changes_timeout);
// - `limit` ends the stream after that many rows, again without a last_seq row;
// - the `Last-Event-ID` request header, when present, replaces `since` (a browser
//   reconnecting sends it). CouchDB strips optional quotes from a seq, so both the id as
//   received and a bare seq work here too;
// - a missing database is a 404 `{"error":"not_found","reason":"Database does not exist."}`
//   before any stream starts (express-pouchdb's own reason would be "no_db_file").
//
// The changes come from the very PouchDB object express-pouchdb serves the database with
// (its cache in create-or-delete-dbs), wrapped the same way, so writes through the normal
// routes reach this feed at once. The live feed is cancelled when the client goes away:
// the server runs for a whole test session and must not collect listeners. (A loopback
// proxy to feed=continuous would not do: express-pouchdb never cancels a continuous feed
// whose client left.)

const cleanFilename = require('express-pouchdb/lib/clean-filename');
const { getOrCreateDB } = require('express-pouchdb/lib/create-or-delete-dbs');
const { sendError } = require('express-pouchdb/lib/utils');

// CouchDB's [chttpd] changes_timeout default: the longest wait between two writes.
const CHANGES_TIMEOUT_MS = 60000;
// Query parameters that shape the stream here rather than the PouchDB changes() call.
const STREAM_PARAMS = ['feed', 'heartbeat', 'timeout', 'limit'];

function parseValue(text) {
  // express-pouchdb turns each query value into JSON when it parses ("true", "5", '"x"').
  try {
    return JSON.parse(text);
  } catch (err) {
    return text;
  }
}

function sinceFromHeader(value) {
  const text = String(value).trim().replace(/^"(.*)"$/, '$1');
  return /^[0-9]+$/.test(text) ? Number(text) : text;
}

// How long the stream may stay silent, and what happens then (chttpd's
// get_changes_timeout): a heartbeat frame when heartbeats were asked for, else the end.
function idlePolicy(query) {
  const { heartbeat, timeout } = query;
  if (heartbeat === true) return { ms: CHANGES_TIMEOUT_MS, heartbeat: true };
  if (typeof heartbeat === 'number' && heartbeat > 0) {
    return { ms: Math.min(CHANGES_TIMEOUT_MS, heartbeat), heartbeat: true };
  }
  if (typeof timeout === 'number' && timeout >= 0) {
    return { ms: Math.min(CHANGES_TIMEOUT_MS, timeout), heartbeat: false };
  }
  return { ms: CHANGES_TIMEOUT_MS, heartbeat: false };
}

function frame(change) {
  return `data: ${JSON.stringify(change)}\nid: ${JSON.stringify(change.seq)}\n\n`;
}

async function serve(req, res, PouchDB, dbWrapper) {
  let gone = false;
  let stop = () => {};
  res.on('close', () => {
    gone = true;
    stop();
  });

  const name = cleanFilename(req.params.db);
  const dbs = await PouchDB.allDbs();
  if (!dbs.includes(name)) {
    res.status(404).json({ error: 'not_found', reason: 'Database does not exist.' });
    return;
  }
  const db = await getOrCreateDB(PouchDB, name);
  await dbWrapper.wrap(name, db);

  const query = {};
  for (const [key, value] of Object.entries(req.query)) query[key] = parseValue(value);
  const options = { ...query, query_params: JSON.parse(JSON.stringify(query)) };
  for (const key of STREAM_PARAMS) delete options[key];
  const lastEventId = req.get('Last-Event-ID');
  if (lastEventId !== undefined) options.since = sinceFromHeader(lastEventId);
  let remaining = typeof query.limit === 'number' ? Math.max(1, query.limit) : Infinity;

  // What is there already, in one non-live read as CouchDB does before it waits: an error
  // here (a bad filter, a bad since) is still an ordinary JSON answer, not a broken stream.
  let backlog;
  try {
    backlog = await db.changes({
      ...options,
      live: false,
      limit: Number.isFinite(remaining) ? remaining : undefined,
    });
  } catch (err) {
    if (!gone) sendError(res, err);
    return;
  }
  if (gone) return;

  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.flushHeaders();
  for (const change of backlog.results) res.write(frame(change));
  remaining -= backlog.results.length;
  if (remaining <= 0) {
    res.end();
    return;
  }
  if (backlog.results.length === 0) res.write('\n');

  const policy = idlePolicy(query);
  let timer = null;
  let live = null;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!policy.heartbeat) {
        stop();
        return;
      }
      res.write('event: heartbeat\ndata: \n\n');
      arm();
    }, policy.ms);
  };
  stop = () => {
    clearTimeout(timer);
    timer = null;
    if (live !== null) {
      const feed = live;
      live = null;
      feed.removeAllListeners('change');
      feed.cancel();
    }
    if (!res.writableEnded) res.end();
  };

  arm();
  live = db
    .changes({ ...options, since: backlog.last_seq, live: true })
    .on('change', (change) => {
      res.write(frame(change));
      remaining -= 1;
      if (remaining <= 0) stop();
      else arm();
    })
    // A deleted database completes the feed; CouchDB ends the stream then too.
    .on('complete', () => stop())
    .on('error', () => stop());
}

// Middleware for `GET /:db/_changes`: serves feed=eventsource, passes everything else on.
function eventsourceChanges({ PouchDB, dbWrapper }) {
  return function changesEventSource(req, res, next) {
    if (req.query.feed !== 'eventsource') return next();
    serve(req, res, PouchDB, dbWrapper).catch((err) => {
      if (!res.headersSent) sendError(res, err);
      else res.end();
    });
    return undefined;
  };
}

module.exports = { eventsourceChanges };
