/* Starts Redoc on #redoc-container; the nonce lets the CSP accept the <style> elements Redoc creates.
   Redoc's sidebar footer always draws Redocly's logo from their CDN: a request to the internet that a closed
   hospital network (and the CSP) refuses, logged as an error. Its image is left without a source and hidden. */
"use strict";
(function () {
  const remoteLogo = /^https?:\/\/cdn\.redoc\.ly\//;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && name === "src" && remoteLogo.test(String(value))) {
      setAttribute.call(this, "hidden", "");
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    ...src,
    set(value) {
      if (remoteLogo.test(String(value))) {
        setAttribute.call(this, "hidden", "");
        return;
      }
      src.set.call(this, value);
    },
  });
  const container = document.getElementById("redoc-container");
  Redoc.init(container.dataset.specUrl, { nonce: document.currentScript.nonce }, container);
})();
