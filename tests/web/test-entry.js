// test-entry.js: what the browser tests need from web/src that a page never gets, as the one
// global window.LoopwiseTest. Built by helpers.mjs:testScript() with the shipped script's
// bundler and minifier (web/bundle.mjs); never part of web/dist, so the shipped global
// window.Loopwise carries no test hooks. loadEngine is the shipped engine.js on any module;
// loadTestEngine needs loopwise-test.wasm (served by the tests at /test/loopwise-test.wasm);
// readDisplay is the shipped reader of a compiled config's display part.
import { loadEngine, readDisplay } from '../../web/src/engine.js';
import { createStore, openDb } from '../../web/src/store.js';
import { createTransport } from '../../web/src/transport.js';
import { loadTestEngine } from '../wasm/test-engine.mjs';

window.LoopwiseTest = { loadEngine, loadTestEngine, readDisplay, openDb, createStore, createTransport };
