/* Starts Redoc on #redoc-container; the nonce lets the CSP accept the <style> elements Redoc creates. */
"use strict";
(function () {
  const container = document.getElementById("redoc-container");
  Redoc.init(container.dataset.specUrl, { nonce: document.currentScript.nonce }, container);
})();
