// base64url <-> ArrayBuffer for the hosted pages (registration, sign-in): WebAuthn's binary
// fields travel as unpadded base64url in passlink's JSON. Loaded before each page's own script.
(function () {
  "use strict";

  function decode(value) {
    var s = String(value).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function encode(buffer) {
    if (!buffer) return null;
    var bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  window.passlinkBase64url = { decode: decode, encode: encode };
})();
