/* Prorata's card form on Stripe (prorata.payments.stripe_gateway), the Stripe gateway's
 * counterpart of the sandbox's gateway.js.
 *
 * Prorata's own file, served from /payments/stripe/v1/card.js and loaded with its Subresource
 * Integrity hash. It loads Stripe.js from Stripe's host (options.stripe_js: Stripe's rule is that
 * Stripe.js is always loaded from js.stripe.com, so it cannot be pinned) and mounts Stripe's Card
 * Element, itself a frame from Stripe's host, in every [data-card-form] slot. When the page's form is
 * submitted (with "A new card" chosen, if there is a choice), stripe.createPaymentMethod sends the
 * card to Stripe and answers a PaymentMethod id (pm_...), which is put in the form's card_token
 * field before the form goes: the page and Prorata's server never see the card number.
 *
 * Only pages of a deployment that selects the Stripe gateway load this (the demo and the tests use
 * the sandbox, and load nothing from another host).
 */
(function () {
  "use strict";

  function start() {
    document.querySelectorAll("[data-card-form]").forEach(function (slot) {
      var options = JSON.parse(slot.getAttribute("data-options") || "{}");
      var form = slot.closest("form");
      var tokenField = form.querySelector("input[name=card_token]");
      var stripe = window.Stripe(options.publishable_key, { locale: options.locale || "auto" });
      var elements = stripe.elements({ locale: options.locale || "auto" });
      var card = elements.create("card", { hidePostalCode: true });
      var mount = document.createElement("div");
      mount.className = "card-frame";
      slot.appendChild(mount);
      card.mount(mount);
      var error = document.createElement("p");
      error.className = "field-error";
      error.setAttribute("role", "alert");
      error.hidden = true;
      slot.appendChild(error);
      var sending = false;
      var busy = false;

      function newCardChosen() {
        var choice = form.querySelector("input[name=payment_method]:checked");
        return !form.querySelector("input[name=payment_method]") || (choice && choice.value === "new");
      }
      function show(message) {
        error.textContent = message || "";
        error.hidden = !message;
      }
      card.on("change", function (event) { show(event.error ? event.error.message : ""); });
      form.addEventListener("submit", function (event) {
        if (sending || !newCardChosen()) { return; }
        event.preventDefault();
        if (busy) { return; }
        busy = true;
        stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
          busy = false;
          if (result.error) {
            show(result.error.message);
            card.focus();
            return;
          }
          show("");
          tokenField.value = result.paymentMethod.id;
          sending = true;
          // after this task: a form still firing its submit event ignores requestSubmit()
          window.setTimeout(function () {
            form.requestSubmit ? form.requestSubmit() : form.submit();
          }, 0);
        });
      });
      form.querySelectorAll("input[name=payment_method]").forEach(function (radio) {
        radio.addEventListener("change", function () { slot.hidden = !newCardChosen(); });
      });
      slot.hidden = !newCardChosen();
    });
  }

  function load() {
    if (window.Stripe) { start(); return; }
    var first = document.querySelector("[data-card-form]");
    if (!first) { return; }
    var options = JSON.parse(first.getAttribute("data-options") || "{}");
    var tag = document.createElement("script");
    tag.src = options.stripe_js;
    tag.addEventListener("load", start);
    document.head.appendChild(tag);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", load);
  } else {
    load();
  }
})();
