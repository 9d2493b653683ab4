// Declares the host functions loopwise.wasm imports from "env", so emcc links them as
// imports. No Emscripten glue is shipped: web/src/engine.js supplies the real versions.
mergeInto(LibraryManager.library, {
  lw_parse_number: function (text, len) {
    throw new Error('provided by web/src/engine.js');
  },
});
