// Declares the host function loopwise-config.wasm (the config checker) imports from "env", so
// emcc links it as an import. No Emscripten glue is shipped: its loader supplies the real one
// (web/demo/config-editor.js, tests/wasm/config-tool.test.mjs).
mergeInto(LibraryManager.library, {
  lw_parse_number: function (text, len) {
    throw new Error("provided by the loader");
  },
});
