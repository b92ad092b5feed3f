// passlink: demo sign-in page (username-less, with passkey autofill where the browser offers it).
// The server creates a session for this page and answers its id and token; the page keeps them
// in memory only and never logs them.
(function () {
  "use strict";

  var UNKNOWN_PASSKEY_IDS = ["COMMAND-Aej7i"];

  var MESSAGES = {
    cancelled: {
      title: "Not signed in",
      text: "The passkey prompt was closed or timed out. Try again.",
    },
    unknown: {
      title: "Passkey not recognised",
      text: "This passkey does not belong to an account here (it may have been deleted). Try again with another passkey.",
    },
    unsupported: {
      title: "Passkeys are not available",
      text: "This browser cannot use passkeys. Open this page in an up-to-date browser on a device with a screen lock, or use a security key.",
      noRetry: true,
    },
    origin: {
      title: "Not signed in",
      text: "Passkeys cannot be used on this address.",
      noRetry: true,
    },
    network: {
      title: "Cannot reach the server",
      text: "We could not reach the server. Check your connection and try again.",
    },
    generic: {
      title: "Not signed in",
      text: "Something went wrong while signing you in. Try again.",
    },
  };

  var STATES = ["ready", "progress", "success", "error"];
  var base = new URL("login/", window.location.href);
  var conditional = null; // AbortController of the pending autofill request

  function $(id) {
    return document.getElementById(id);
  }

  function show(state, announcement, focus) {
    STATES.forEach(function (name) {
      $(name).hidden = name !== state;
    });
    var heading = $(state).querySelector("h1");
    document.title = heading.textContent + " · passkey";
    $("status").textContent = announcement || heading.textContent;
    if (focus !== false) heading.focus({ preventScroll: false });
  }

  function showError(kind) {
    var msg = MESSAGES[kind] || MESSAGES.generic;
    $("error-title").textContent = msg.title;
    $("error-message").textContent = msg.text;
    $("retry").hidden = !!msg.noRetry;
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

  function post(path, body) {
    return fetch(new URL(path, base).toString(), {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    }).then(
      function (res) {
        return res.text().then(function (text) {
          var json = null;
          try {
            json = text ? JSON.parse(text) : {};
          } catch (e) {
            json = null;
          }
          if (!res.ok || json === null) throw new ApiError(res.status, json);
          return json;
        });
      },
      function () {
        throw new ApiError(0, null);
      }
    );
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

  function classifyApiError(err) {
    if (err.status === 0) return "network";
    var ids = errorIds(err.body);
    for (var i = 0; i < UNKNOWN_PASSKEY_IDS.length; i++) if (ids.indexOf(UNKNOWN_PASSKEY_IDS[i]) >= 0) return "unknown";
    return "generic";
  }

  function classifyBrowserError(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "AbortError":
        return "cancelled";
      case "SecurityError":
        return "origin";
      case "NotSupportedError":
        return "unsupported";
      default:
        return "generic";
    }
  }

  // ---- WebAuthn ------------------------------------------------------------------------------

  function requestOptions(challenge) {
    var source = (challenge && (challenge.publicKey || challenge)) || {};
    var pk = JSON.parse(JSON.stringify(source));
    pk.challenge = fromBase64url(pk.challenge);
    if (Array.isArray(pk.allowCredentials)) {
      pk.allowCredentials = pk.allowCredentials.map(function (c) {
        var out = { type: c.type || "public-key", id: fromBase64url(c.id) };
        if (Array.isArray(c.transports)) out.transports = c.transports;
        return out;
      });
    }
    return pk;
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toBase64url(r.authenticatorData),
        clientDataJSON: toBase64url(r.clientDataJSON),
        signature: toBase64url(r.signature),
        userHandle: toBase64url(r.userHandle),
      },
      extensions: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() || {} : {},
    };
  }

  // One sign-in: a fresh session with a challenge, the browser's assertion, the check.
  // `mode` is "button" (a modal prompt) or "autofill" (conditional mediation).
  function signIn(mode) {
    var controller = null;
    if (mode === "autofill") {
      controller = new AbortController();
      conditional = controller;
    } else {
      show("progress", "Confirm on your device. Follow your browser's prompt to use your passkey.");
    }
    var session;
    return post("start")
      .then(function (started) {
        session = started;
        var options = { publicKey: requestOptions(started.challenge) };
        if (controller) {
          options.mediation = "conditional";
          options.signal = controller.signal;
        }
        return navigator.credentials.get(options).then(
          function (cred) {
            if (!cred) throw { name: "NotAllowedError" };
            if (controller) show("progress", "Signing you in…");
            $("progress-text").textContent = "Signing you in…";
            return post("finish", {
              sessionId: session.sessionId,
              sessionToken: session.sessionToken,
              credentialAssertionData: assertionJSON(cred),
            }).then(null, function (err) {
              showError(classifyApiError(err));
              return null;
            });
          },
          function (err) {
            // The autofill request is aborted when the button is used: not an error.
            if (controller && controller.signal.aborted) return null;
            showError(classifyBrowserError(err));
            return null;
          }
        );
      }, function (err) {
        if (controller && controller.signal.aborted) return null;
        showError(err instanceof ApiError ? classifyApiError(err) : "generic");
        return null;
      })
      .then(function (done) {
        if (!done) return;
        session = null;
        var display = (done.user.displayName || "").trim();
        var login = (done.user.loginName || "").trim();
        $("user-name").textContent = display || login;
        $("user-login").textContent = login;
        $("user-login-wrap").hidden = !display || !login || display === login;
        show("success", "You are signed in as " + (display || login) + (login && display && login !== display ? " (" + login + ")" : "") + ".");
      })
      .catch(function () {
        showError("generic");
      });
  }

  function startAutofill() {
    if (!window.PublicKeyCredential || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
    PublicKeyCredential.isConditionalMediationAvailable().then(
      function (available) {
        // The field only serves the browser's passkey suggestions: shown where they exist.
        $("autofill").hidden = !available;
        if (available && !$("ready").hidden) signIn("autofill");
      },
      function () {}
    );
  }

  function stopAutofill() {
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
  }

  function backToStart() {
    stopAutofill();
    show("ready");
    startAutofill();
  }

  function init() {
    $("signin-form").addEventListener("submit", function (event) {
      event.preventDefault();
      stopAutofill();
      signIn("button");
    });
    $("retry").addEventListener("click", backToStart);
    $("again").addEventListener("click", backToStart);
    if (!window.PublicKeyCredential || !navigator.credentials || typeof navigator.credentials.get !== "function") {
      showError("unsupported");
      return;
    }
    show("ready", null, false);
    startAutofill();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
