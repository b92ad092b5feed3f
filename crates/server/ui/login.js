// passlink: the hosted sign-in page — /ui/login finishing an OpenID Connect authorization request
// (`authRequest` in the URL), and the demo page /ui/passkey/login. Username-less, with passkey
// autofill where the browser offers it; texts come from the server in the page's language.
// The server creates a session for this page and answers its id and token; the page keeps them
// in memory only and never logs them.
(function () {
  "use strict";

  var UNKNOWN_PASSKEY_IDS = ["COMMAND-Aej7i"];
  // The authorization request is unknown, finished or expired: start again at the application.
  var EXPIRED_IDS = ["QUERY-Thee9", "COMMAND-Sx208nt", "OIDC-aRx3p"];
  var INACTIVE_IDS = ["SESSION-Gj4ko", "COMMAND-Df4b3"];

  // The texts of this page in its language, rendered by the server (no inline script runs).
  var T = JSON.parse(document.getElementById("messages").textContent);
  var MESSAGES = T.errors;

  var STATES = ["ready", "progress", "success", "error"];
  var base = new URL("login/", window.location.href);
  // Set when the page finishes an OpenID Connect authorization request (/ui/login).
  var authRequest = new URL(window.location.href).searchParams.get("authRequest");
  var conditional = null; // AbortController of the pending autofill request

  function $(id) {
    return document.getElementById(id);
  }

  function show(state, announcement, focus) {
    STATES.forEach(function (name) {
      $(name).hidden = name !== state;
    });
    var heading = $(state).querySelector("h1");
    document.title = heading.textContent + T.titleSuffix;
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
    function any(list) {
      for (var i = 0; i < list.length; i++) if (ids.indexOf(list[i]) >= 0) return true;
      return false;
    }
    if (any(UNKNOWN_PASSKEY_IDS)) return "unknown";
    if (any(EXPIRED_IDS)) return "expired";
    if (any(INACTIVE_IDS)) return "inactive";
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
      show("progress", T.confirm);
    }
    var session;
    return post("start", authRequest ? { authRequest: authRequest } : {})
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
            if (controller) show("progress", T.signingIn);
            $("progress-text").textContent = T.signingIn;
            var finish = {
              sessionId: session.sessionId,
              sessionToken: session.sessionToken,
              credentialAssertionData: assertionJSON(cred),
            };
            if (authRequest) finish.authRequest = authRequest;
            return post("finish", finish).then(null, function (err) {
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
        if (done.callbackUrl) {
          // Back to the application with the code.
          show("progress", T.redirecting, false);
          window.location.assign(done.callbackUrl);
          return;
        }
        var display = (done.user.displayName || "").trim();
        var login = (done.user.loginName || "").trim();
        $("user-name").textContent = display || login;
        $("user-login").textContent = login;
        $("user-login-wrap").hidden = !display || !login || display === login;
        show("success", T.signedInAs + " " + (display || login) + (login && display && login !== display ? " (" + login + ")" : "") + ".");
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
    var initialError = document.querySelector("main").getAttribute("data-initial-error");
    if (initialError) {
      showError(initialError);
      return;
    }
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
