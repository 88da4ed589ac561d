// c2d's pages: sign the owner's decisions in this browser, with a key that never leaves it.
//
// The key is an Ed25519 key made by WebCrypto as non-extractable, kept in this browser's
// IndexedDB per server (its ledger origin) and person: the page can ask it to sign, no script
// can read it out. Its public half is registered as one more key of the person
// (POST /ui/keys, the "c2d/user-key" statement signed by the key itself), once, when a page
// with a form to sign first opens.
//
// A form to sign carries data-statement: the statement of its action as the server built it
// (runner/control/web/signing.py). On submit the script puts in the note typed in the field
// named by data-note (or, with data-any-params ticked, null params), signs the statement's
// canonical JSON (RFC 8785: for these documents of strings, null and one small integer, that is
// keys sorted by UTF-16 code units and JSON.stringify's strings and numbers), and sends
// {statement, signature, key} in the form's "signed" field. The server rebuilds the statement
// and checks all of it; nothing here is trusted there.
(function () {
  "use strict";
  var DOMAIN = "c2d-statement/1\n";
  var STORE = "keys";
  var status = null;

  function say(text, bad) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("error", !!bad);
    }
  }

  function canonical(value) {
    if (Array.isArray(value)) {
      return "[" + value.map(canonical).join(",") + "]";
    }
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (k) {
        return JSON.stringify(k) + ":" + canonical(value[k]);
      }).join(",") + "}";
    }
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new Error("c2d statements hold integers only");
    }
    return JSON.stringify(value);
  }

  function base64(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return window.btoa(text);
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function request(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function database() {
    var open = window.indexedDB.open("c2d-signing", 1);
    open.onupgradeneeded = function () { open.result.createObjectStore(STORE); };
    return request(open);
  }

  function stored(db, name) {
    return request(db.transaction(STORE).objectStore(STORE).get(name));
  }

  function keep(db, name, record) {
    return request(db.transaction(STORE, "readwrite").objectStore(STORE).put(record, name));
  }

  function sign(pair, statement) {
    var bytes = new TextEncoder().encode(DOMAIN + canonical(statement));
    return window.crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes).then(base64);
  }

  function describe(pair) {
    return window.crypto.subtle.exportKey("raw", pair.publicKey).then(function (raw) {
      return window.crypto.subtle.digest("SHA-256", raw).then(function (digest) {
        return { publicKey: base64(raw), fingerprint: "ed25519:" + hex(digest).slice(0, 32) };
      });
    });
  }

  function csrf() {
    var field = document.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  function register(who, pair, facts) {
    var statement = {
      type: "c2d/user-key", version: 1, user: who.user, origin: who.origin,
      public_key: facts.publicKey,
    };
    return sign(pair, statement).then(function (signature) {
      var body = new URLSearchParams({
        csrf: csrf(), public_key: facts.publicKey, signature: signature,
      });
      return fetch("/ui/keys", { method: "POST", body: body, credentials: "same-origin" });
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("the server refused this browser's key (HTTP " + response.status + ")");
      }
    });
  }

  // This browser's key for the signed-in person, registered: the kept one if the server still
  // lists it, else a new one, registered before it is kept.
  function ensureKey(who) {
    var name = who.origin + "\n" + who.user;
    return database().then(function (db) {
      return stored(db, name).then(function (record) {
        if (record && who.keys.indexOf(record.fingerprint) >= 0) {
          return record;
        }
        return window.crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])
          .then(function (pair) {
            return describe(pair).then(function (facts) {
              return register(who, pair, facts).then(function () {
                var fresh = { pair: pair, fingerprint: facts.fingerprint };
                return keep(db, name, fresh).then(function () { return fresh; });
              });
            });
          });
      });
    });
  }

  function statementOf(form) {
    var statement = JSON.parse(form.getAttribute("data-statement"));
    var note = form.getAttribute("data-note");
    if (note) {
      statement.note = form.elements[note].value;
    }
    var any = form.getAttribute("data-any-params");
    if (any && form.elements[any].checked) {
      statement.params_digest = null;
    }
    return statement;
  }

  function start() {
    status = document.getElementById("signing");
    var forms = document.querySelectorAll("form[data-statement]");
    if (!status || forms.length === 0) {
      return;
    }
    var who = {
      origin: status.getAttribute("data-origin"),
      user: status.getAttribute("data-user"),
      keys: (status.getAttribute("data-keys") || "").split(" ").filter(Boolean),
    };
    var ready;
    if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) {
      ready = Promise.reject(new Error(
        "this page is not served over HTTPS, so the browser gives it no WebCrypto"));
    } else {
      ready = ensureKey(who);
    }
    ready.then(function (record) {
      status.setAttribute("data-key", record.fingerprint);
      say("Your decisions here are signed in this browser with your key " +
        record.fingerprint + ", which never leaves it.");
    }, function (error) {
      say("This browser cannot sign your decisions (" + error.message + "), so they would " +
        "not be sent: use a current browser, or the c2d CLI (`c2d approve`, `c2d release`).",
        true);
    });
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button[type=submit]");
        if (button) {
          button.disabled = true;
        }
        ready.then(function (record) {
          var statement = statementOf(form);
          return sign(record.pair, statement).then(function (signature) {
            form.elements.signed.value = JSON.stringify({
              statement: statement, signature: signature, key: record.fingerprint,
            });
            form.submit();
          });
        }).catch(function (error) {
          if (button) {
            button.disabled = false;
          }
          say("Not sent: signing failed (" + error.message + ").", true);
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
