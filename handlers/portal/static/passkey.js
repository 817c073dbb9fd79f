// The portal's passkey script: runs navigator.credentials for the forms
// marked data-passkey="register" or "login". It asks the form's
// data-options URL for the options (with the form's fields, CSRF token
// included), runs the ceremony, puts the answer in the form's hidden
// fields "ceremony" and "credential", and submits the form.
(function () {
  "use strict";
  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var b = atob(s), u = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) { u[i] = b.charCodeAt(i); }
    return u.buffer;
  }
  function toB64(buf) {
    if (!buf) { return undefined; }
    var u = new Uint8Array(buf), s = "";
    for (var i = 0; i < u.length; i++) { s += String.fromCharCode(u[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) { var o = Object.assign({}, c); o.id = toBuf(c.id); return o; });
  }
  function credentialJSON(c) {
    var r = c.response, out = {
      id: c.id, rawId: toB64(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      out.response.userHandle = toB64(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function say(form, msg) {
    var p = form.querySelector(".passkey-status");
    if (p) { p.textContent = msg; }
  }
  var pending = null; // the AbortController of a conditional request
  // run runs the form's ceremony; conditional: as the browser's autofill
  // (the login field), silently.
  function run(form, conditional) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, "This browser cannot use passkeys.");
      return;
    }
    if (pending) { pending.abort(); pending = null; }
    var kind = form.getAttribute("data-passkey");
    var abort = conditional ? new AbortController() : null;
    if (abort) { pending = abort; } else { say(form, "Waiting for your passkey…"); }
    fetch(form.getAttribute("data-options"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) { throw new Error(j.error || ("status " + res.status)); }
        return j;
      });
    }).then(function (j) {
      var o = j.options;
      o.challenge = toBuf(o.challenge);
      if (kind === "register") {
        o.user.id = toBuf(o.user.id);
        o.excludeCredentials = ids(o.excludeCredentials);
        return navigator.credentials.create({ publicKey: o }).then(function (c) { return [j.ceremony, c]; });
      }
      o.allowCredentials = ids(o.allowCredentials);
      var req = { publicKey: o };
      if (abort) { req.mediation = "conditional"; req.signal = abort.signal; }
      return navigator.credentials.get(req).then(function (c) { return [j.ceremony, c]; });
    }).then(function (pair) {
      form.querySelector("input[name=ceremony]").value = pair[0];
      form.querySelector("input[name=credential]").value = credentialJSON(pair[1]);
      form.submit();
    }).catch(function (e) {
      if (abort && abort.signal.aborted) { return; }
      say(form, "The passkey was not used: " + (e && e.message ? e.message : e));
    });
  }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      run(form, false);
    });
    if (form.hasAttribute("data-conditional") && window.PublicKeyCredential &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) { run(form, true); }
      });
    }
  });
})();
