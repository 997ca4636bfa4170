/* The sandbox payment gateway's card form (Prorata's built-in, offline gateway).
 *
 * Served by the gateway from its own prefix (/sandbox-gateway/v1/gateway.js), as a provider's
 * script is from its host, and loaded by the billing center with a Subresource Integrity hash.
 *
 * On a merchant page: every [data-card-form] element gets the gateway's card form in a frame. When
 * the page's form is submitted (with "A new card" chosen, if there is a choice), the frame sends the
 * card to the gateway's tokenisation endpoint and hands back a single-use token, which is put in the
 * form's card_token field before the form goes: the page, and the merchant's server, never see the
 * card number. In the frame (<html data-sandbox-frame>): the form itself.
 */
(function () {
  "use strict";
  var PREFIX = "sandbox-gateway:";
  // Only set while this script runs: kept for a start after the page is read.
  var SCRIPT = document.currentScript;

  function frameMode() {
    var form = document.querySelector("form");
    var params = new URLSearchParams(window.location.search);
    var parentOrigin = params.get("origin") || window.location.origin;
    var tokensUrl = form.getAttribute("data-tokens");
    var busy = false;

    function tell(message) {
      window.parent.postMessage(message, parentOrigin);
    }
    var lastHeight = 0;
    function resize() {
      // the form's own height, not the frame's (which the page sets from this: no feedback loop)
      var height = Math.ceil(form.getBoundingClientRect().bottom) + 4;
      if (Math.abs(height - lastHeight) > 1) {
        lastHeight = height;
        tell({ type: PREFIX + "resize", height: height });
      }
    }
    function showErrors(field, message) {
      form.querySelectorAll("[data-error]").forEach(function (node) {
        var mine = node.getAttribute("data-error") === field;
        node.textContent = mine ? message : "";
        node.hidden = !mine;
        var input = form.querySelector("[name=" + node.getAttribute("data-error") + "]");
        if (input) {
          input.setAttribute("aria-invalid", mine ? "true" : "false");
          if (mine) { input.focus(); }
        }
      });
      resize();
    }
    function tokenize() {
      if (busy) { return; }
      busy = true;
      var body = {
        number: form.number.value, expiry: form.expiry.value, cvc: form.cvc.value,
        locale: document.documentElement.lang || "en"
      };
      fetch(tokensUrl, {
        method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (answer) {
        busy = false;
        if (answer.ok && answer.data.token) {
          showErrors("", "");
          tell({ type: PREFIX + "token", token: answer.data.token });
        } else {
          var error = answer.data.error || {};
          showErrors(error.field || "number", error.message || "");
          tell({ type: PREFIX + "error" });
        }
      }).catch(function () {
        busy = false;
        showErrors("number", form.getAttribute("data-unreachable"));
        tell({ type: PREFIX + "error" });
      });
    }
    window.addEventListener("message", function (event) {
      if (event.source !== window.parent || event.origin !== parentOrigin) { return; }
      if (event.data && event.data.type === PREFIX + "tokenize") { tokenize(); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      tell({ type: PREFIX + "submit" });
    });
    window.addEventListener("resize", resize);
    resize();
  }

  function pageMode() {
    var here = new URL(SCRIPT ? SCRIPT.src : window.location.href, window.location.href);
    document.querySelectorAll("[data-card-form]").forEach(function (slot) {
      var options = JSON.parse(slot.getAttribute("data-options") || "{}");
      var form = slot.closest("form");
      var tokenField = form.querySelector("input[name=card_token]");
      var frameUrl = new URL(options.frame, here);
      frameUrl.searchParams.set("locale", options.locale || "en");
      frameUrl.searchParams.set("origin", window.location.origin);
      var frame = document.createElement("iframe");
      frame.src = frameUrl.toString();
      frame.title = slot.getAttribute("data-title") || "Card details";
      frame.className = "card-frame";
      frame.setAttribute("scrolling", "no");
      frame.style.width = "100%";
      frame.style.border = "0";
      frame.style.height = "13rem";
      slot.appendChild(frame);
      // the page shows where the focus is: on the frame while a field in it is typed in
      frame.addEventListener("focus", function () { frame.classList.add("is-focused"); });
      frame.addEventListener("blur", function () { frame.classList.remove("is-focused"); });
      var sending = false;

      function newCardChosen() {
        var choice = form.querySelector("input[name=payment_method]:checked");
        return !form.querySelector("input[name=payment_method]") || (choice && choice.value === "new");
      }
      window.addEventListener("message", function (event) {
        if (event.source !== frame.contentWindow || event.origin !== frameUrl.origin) { return; }
        var data = event.data || {};
        if (data.type === PREFIX + "resize" && data.height) {
          frame.style.height = Math.ceil(data.height) + "px";
        } else if (data.type === PREFIX + "token") {
          tokenField.value = data.token;
          sending = true;
          form.requestSubmit ? form.requestSubmit() : form.submit();
        } else if (data.type === PREFIX + "error") {
          frame.focus();
        } else if (data.type === PREFIX + "submit") {
          form.requestSubmit ? form.requestSubmit() : form.submit();
        }
      });
      form.addEventListener("submit", function (event) {
        if (sending || !newCardChosen()) { return; }
        event.preventDefault();
        frame.contentWindow.postMessage({ type: PREFIX + "tokenize" }, frameUrl.origin);
      });
      form.querySelectorAll("input[name=payment_method]").forEach(function (radio) {
        radio.addEventListener("change", function () {
          slot.hidden = !newCardChosen();
        });
      });
      slot.hidden = !newCardChosen();
    });
  }

  if (document.documentElement.hasAttribute("data-sandbox-frame")) {
    frameMode();
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", pageMode);
  } else {
    pageMode();
  }
})();
