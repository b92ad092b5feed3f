// passlink: hosted passkey registration page.
// The link's query carries userID, orgID, codeID and code; the code authorizes every call below.
// Nothing here logs the code or the query.
(function () {
  "use strict";

  var INVALID_CODE_ID = "COMMAND-Eeb2a";
  // The authenticator policy refused the authenticator (its AAGUID) or its attestation.
  var NOT_ALLOWED_ID = "PASSKEY-Pol01";
  var NOT_ATTESTED_ID = "PASSKEY-Att01";

  // The texts of every language, rendered by the server (no inline script runs):
  // {lang: {texts: {key: text}, errors: {kind: {title, text, retry}}}}. The page starts in the
  // language the server chose (Accept-Language); /info may name the user's preferred one.
  var ALL_TEXTS = JSON.parse(document.getElementById("texts").textContent);
  var TEXTS = ALL_TEXTS[document.documentElement.lang] || ALL_TEXTS.en;

  // The text of `key`, with each {name} of `vars` filled in.
  function t(key, vars) {
    var text = TEXTS.texts[key];
    if (typeof text !== "string") text = "";
    Object.keys(vars || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(vars[name]);
    });
    return text;
  }

  // Switch the page to `lang` (a tag the server speaks): every element naming a text key.
  function useLanguage(lang) {
    if (!lang || !ALL_TEXTS[lang] || lang === document.documentElement.lang) return;
    TEXTS = ALL_TEXTS[lang];
    document.documentElement.lang = lang;
    Array.prototype.forEach.call(document.querySelectorAll("[data-t]"), function (el) {
      el.textContent = t(el.getAttribute("data-t"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-t-alt]"), function (el) {
      el.setAttribute("alt", t(el.getAttribute("data-t-alt")));
    });
  }

  var STATES = ["loading", "ready", "progress", "success", "error"];

  var params = new URLSearchParams(window.location.search);
  var link = {
    userID: params.get("userID") || "",
    codeID: params.get("codeID") || "",
    code: params.get("code") || "",
  };
  // The API lives at the origin root (or under the same path prefix as the page, behind a proxy):
  // the page is <root>/ui/passkey/register.
  var apiRoot = new URL("../../", window.location.href);
  var infoURL = new URL("register/info", window.location.href);

  var retryAction = null;
  // The name the page prefilled: kept by the person, it gives way to the provider's name.
  var prefilledName = "";

  function $(id) {
    return document.getElementById(id);
  }

  function show(state, announcement) {
    STATES.forEach(function (name) {
      $(name).hidden = name !== state;
    });
    var section = $(state);
    var heading = section.querySelector("h1");
    document.title = heading.textContent + t("title_suffix");
    $("status").textContent = announcement || heading.textContent;
    // Move focus to the new state's heading so keyboard and screen reader users land on it.
    heading.focus({ preventScroll: false });
  }

  function showError(kind, retry) {
    var msg = TEXTS.errors[kind] || TEXTS.errors.generic;
    $("error-title").textContent = msg.title;
    $("error-message").textContent = msg.text;
    retryAction = msg.retry ? retry || null : null;
    $("retry").hidden = !retryAction;
    show("error", msg.title + ". " + msg.text);
  }

  // ---- base64url <-> ArrayBuffer: base64url.js, shared with the other hosted page ----------

  var fromBase64url = window.passlinkBase64url.decode;
  var toBase64url = window.passlinkBase64url.encode;

  // ---- API -----------------------------------------------------------------------------------

  function ApiError(status, body) {
    this.name = "ApiError";
    this.status = status;
    this.body = body || {};
  }

  function errorIds(body) {
    var ids = [];
    if (body && Array.isArray(body.details)) {
      body.details.forEach(function (d) {
        if (d && typeof d.id === "string") ids.push(d.id);
      });
    }
    return ids;
  }

  function hasErrorId(err, id) {
    if (!(err instanceof ApiError)) return false;
    var message = typeof err.body.message === "string" ? err.body.message : "";
    return errorIds(err.body).indexOf(id) >= 0 || message.indexOf(id) >= 0;
  }

  function isInvalidCode(err) {
    return hasErrorId(err, INVALID_CODE_ID);
  }

  function request(url, body) {
    var init = {
      method: body === undefined ? "GET" : "POST",
      headers: { accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(
      function (res) {
        return res.text().then(function (text) {
          var json = null;
          try {
            json = text ? JSON.parse(text) : {};
          } catch (e) {
            json = null;
          }
          if (!res.ok) throw new ApiError(res.status, json);
          if (json === null) throw new ApiError(res.status, null);
          return json;
        });
      },
      function () {
        throw new ApiError(0, null);
      }
    );
  }

  function api(path) {
    return new URL(path, apiRoot).toString();
  }

  function userPath() {
    return "v2/users/" + encodeURIComponent(link.userID) + "/passkeys";
  }

  function fetchInfo() {
    var url = new URL(infoURL.toString());
    url.searchParams.set("userID", link.userID);
    url.searchParams.set("codeID", link.codeID);
    url.searchParams.set("code", link.code);
    return request(url.toString());
  }

  function startRegistration() {
    return request(api(userPath()), {
      code: { id: link.codeID, code: link.code },
      authenticator: "PASSKEY_AUTHENTICATOR_UNSPECIFIED",
    });
  }

  function finishRegistration(passkeyId, credential, name) {
    return request(api(userPath() + "/" + encodeURIComponent(passkeyId)), {
      publicKeyCredential: credential,
      passkeyName: name,
    });
  }

  // ---- WebAuthn ------------------------------------------------------------------------------

  function webauthnSupported() {
    return !!(window.PublicKeyCredential && navigator.credentials && typeof navigator.credentials.create === "function");
  }

  function creationOptions(start) {
    var wrapper = start.publicKeyCredentialCreationOptions || {};
    var source = wrapper.publicKey || wrapper;
    var pk = JSON.parse(JSON.stringify(source));
    pk.challenge = fromBase64url(pk.challenge);
    pk.user = pk.user || {};
    pk.user.id = fromBase64url(pk.user.id);
    if (Array.isArray(pk.excludeCredentials)) {
      pk.excludeCredentials = pk.excludeCredentials.map(function (c) {
        var out = { type: c.type || "public-key", id: fromBase64url(c.id) };
        if (Array.isArray(c.transports)) out.transports = c.transports;
        return out;
      });
    }
    return pk;
  }

  function credentialJSON(cred) {
    var response = cred.response;
    var transports = [];
    if (typeof response.getTransports === "function") {
      try {
        transports = response.getTransports() || [];
      } catch (e) {
        transports = [];
      }
    }
    var extensions = {};
    if (typeof cred.getClientExtensionResults === "function") {
      try {
        extensions = cred.getClientExtensionResults() || {};
      } catch (e) {
        extensions = {};
      }
    }
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toBase64url(response.attestationObject),
        clientDataJSON: toBase64url(response.clientDataJSON),
        transports: transports,
      },
      extensions: extensions,
    };
  }

  function classifyBrowserError(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "AbortError":
        return "cancelled";
      case "InvalidStateError":
        return "exists";
      case "SecurityError":
        return "origin";
      case "NotSupportedError":
        return "unsupported";
      default:
        return "generic";
    }
  }

  function classifyApiError(err, phase) {
    if (isInvalidCode(err)) return "invalid";
    if (hasErrorId(err, NOT_ALLOWED_ID)) return "notAllowed";
    if (hasErrorId(err, NOT_ATTESTED_ID)) return "notAttested";
    if (err.status === 0) return "network";
    // Unknown user: the link points nowhere.
    if (err.status === 404 && phase !== "finish") return "invalid";
    return "generic";
  }

  // ---- Which authenticator -------------------------------------------------------------------

  // authData inside the CBOR attestation object: the byte string after the text key "authData".
  function authDataOf(att) {
    var key = [0x68, 0x61, 0x75, 0x74, 0x68, 0x44, 0x61, 0x74, 0x61]; // text(8) "authData"
    for (var i = 0; i + key.length < att.length; i++) {
      var j = 0;
      while (j < key.length && att[i + j] === key[j]) j++;
      if (j < key.length) continue;
      var p = i + key.length;
      var head = att[p];
      var len;
      if (head >= 0x40 && head <= 0x57) {
        len = head - 0x40;
        p += 1;
      } else if (head === 0x58) {
        len = att[p + 1];
        p += 2;
      } else if (head === 0x59) {
        len = (att[p + 1] << 8) | att[p + 2];
        p += 3;
      } else {
        return null;
      }
      return att.subarray(p, p + len);
    }
    return null;
  }

  // The new credential's AAGUID as a lower-case UUID: authData is rpIdHash (32 bytes), flags,
  // signCount (4), then (AT flag 0x40) the AAGUID. "" when absent or all zeros.
  function aaguidOf(response) {
    var data = null;
    if (typeof response.getAuthenticatorData === "function") {
      try {
        data = new Uint8Array(response.getAuthenticatorData());
      } catch (e) {
        data = null;
      }
    }
    if (!data) data = authDataOf(new Uint8Array(response.attestationObject));
    if (!data || data.length < 53 || (data[32] & 0x40) === 0) return "";
    var hex = "";
    var zero = true;
    for (var i = 37; i < 53; i++) {
      hex += (data[i] < 16 ? "0" : "") + data[i].toString(16);
      if (data[i]) zero = false;
    }
    if (zero) return "";
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // What passlink's AAGUID list calls the authenticator ("" when it does not know it).
  function providerName(aaguid) {
    if (!aaguid) return Promise.resolve("");
    var url = new URL("register/authenticator", window.location.href);
    url.searchParams.set("aaguid", aaguid);
    return request(url.toString()).then(
      function (p) {
        return typeof p.name === "string" ? p.name.trim().slice(0, 200) : "";
      },
      function () {
        return "";
      }
    );
  }

  // The passkey's name: the person's own, or, for the prefilled platform name, the provider's
  // ("Google Password Manager", "YubiKey 5 Series") when the list knows the authenticator.
  function passkeyName(name, cred) {
    if (name !== prefilledName) return Promise.resolve(name);
    return providerName(aaguidOf(cred.response)).then(function (provider) {
      return provider || name;
    });
  }

  // ---- Flow ----------------------------------------------------------------------------------

  function defaultPasskeyName() {
    var platform = "";
    var uad = navigator.userAgentData;
    if (uad && typeof uad.platform === "string") platform = uad.platform;
    if (!platform) {
      var ua = navigator.userAgent || "";
      if (/iPhone/.test(ua)) platform = "iPhone";
      else if (/iPad/.test(ua)) platform = "iPad";
      else if (/Android/.test(ua)) platform = "Android";
      else if (/CrOS/.test(ua)) platform = "ChromeOS";
      else if (/Mac OS X|Macintosh/.test(ua)) platform = "macOS";
      else if (/Windows/.test(ua)) platform = "Windows";
      else if (/Linux/.test(ua)) platform = "Linux";
    }
    return platform ? t("default_name", { platform: platform }) : t("default_name_generic");
  }

  function validateName() {
    var input = $("passkey-name");
    var errorEl = $("passkey-name-error");
    var name = input.value.trim();
    var problem = "";
    if (!name) problem = t("name_missing");
    else if (name.length > 200) problem = t("name_too_long");
    if (problem) {
      errorEl.textContent = problem;
      errorEl.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      $("status").textContent = problem;
      return null;
    }
    errorEl.hidden = true;
    errorEl.textContent = "";
    input.removeAttribute("aria-invalid");
    return name;
  }

  function enroll(name) {
    $("progress-text").textContent = t("progress_text");
    show("progress", t("progress_announce"));
    var retry = function () {
      enroll(name);
    };
    var passkeyId;
    var savedName = name;

    startRegistration()
      .then(
        function (start) {
          passkeyId = start.passkeyId;
          var publicKey = creationOptions(start);
          return navigator.credentials.create({ publicKey: publicKey }).then(
            function (cred) {
              if (!cred) throw { name: "NotAllowedError" };
              $("progress-text").textContent = t("saving");
              $("status").textContent = t("saving");
              return passkeyName(name, cred).then(function (chosen) {
                savedName = chosen;
                return finishRegistration(passkeyId, credentialJSON(cred), chosen).then(null, function (err) {
                  showError(classifyApiError(err, "finish"), retry);
                  return null;
                });
              });
            },
            function (err) {
              showError(classifyBrowserError(err), retry);
              return null;
            }
          );
        },
        function (err) {
          showError(err instanceof ApiError ? classifyApiError(err, "start") : "generic", retry);
          return null;
        }
      )
      .then(function (done) {
        if (!done) return;
        $("success-name").textContent = t("quoted_name", { name: savedName });
        show("success", t("success_announce", { name: savedName }));
      })
      .catch(function () {
        showError("generic", retry);
      });
  }

  function load() {
    show("loading", t("checking"));
    fetchInfo().then(
      function (info) {
        // The user's preferred language wins over the browser's.
        useLanguage(typeof info.language === "string" ? info.language : "");
        var display = (info.displayName || "").trim();
        var login = (info.loginName || "").trim();
        var who = display || login || t("your_account");
        $("who-name").textContent = who;
        $("who-login").textContent = login;
        $("who-login-wrap").hidden = !display || !login || display === login;
        var input = $("passkey-name");
        prefilledName = defaultPasskeyName();
        if (!input.value) input.value = prefilledName;
        show("ready", t("ready_announce", { name: who + (login && display && login !== display ? " (" + login + ")" : "") }));
      },
      function (err) {
        showError(classifyApiError(err, "info"), load);
      }
    );
  }

  function showQr() {
    // The same link as this page, drawn by the server (relative: /ui/passkey/register/qr.svg).
    if ($("other-device").open && !$("qr").getAttribute("src")) {
      $("qr").setAttribute("src", "register/qr.svg" + window.location.search);
    }
  }

  function init() {
    $("other-device").addEventListener("toggle", showQr);
    $("create-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var name = validateName();
      if (name !== null) enroll(name);
    });
    $("passkey-name").addEventListener("input", function () {
      if (this.getAttribute("aria-invalid") === "true" && this.value.trim()) {
        this.removeAttribute("aria-invalid");
        $("passkey-name-error").hidden = true;
      }
    });
    $("retry").addEventListener("click", function () {
      var action = retryAction;
      retryAction = null;
      if (action) action();
    });

    if (!link.userID || !link.codeID || !link.code) {
      showError("invalid");
      return;
    }
    if (!webauthnSupported()) {
      showError("unsupported");
      return;
    }
    load();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
