// The pay step for embedded flows: the provider's own fields, mounted on our page.
// Card details go from the provider's fields to the provider; never through our server.
(function () {
  "use strict";
  var root = document.getElementById("checkout");
  if (!root) return;
  var d = root.dataset;
  var errorBox = document.getElementById("checkout-error");

  function showError(message) {
    errorBox.textContent = message || d.errorLabel;
    errorBox.hidden = false;
  }

  function back(params) {
    var url = new URL(d.returnUrl);
    Object.keys(params || {}).forEach(function (k) { url.searchParams.set(k, params[k]); });
    window.location.assign(url.toString());
  }

  function stripe() {
    var submit = document.getElementById("checkout-submit");
    var client = window.Stripe(d.publishableKey, { locale: d.locale });
    var elements = client.elements({
      clientSecret: d.clientSecret, locale: d.locale,
      appearance: { theme: "stripe", variables: { colorPrimary: d.brand } }
    });
    var details = { name: d.name };
    if (d.email) details.email = d.email;
    if (d.country) details.address = { country: d.country };
    var target = document.getElementById("payment-element");
    target.textContent = "";
    elements.create("payment", { defaultValues: { billingDetails: details } }).mount(target);
    submit.disabled = false;
    root.addEventListener("submit", function (event) {
      event.preventDefault();
      submit.disabled = true;
      errorBox.hidden = true;
      client.confirmPayment({ elements: elements, confirmParams: { return_url: d.returnUrl } })
        .then(function (result) {
          // Only reached when the payment did not redirect: an error the customer can fix.
          if (result && result.error) {
            showError(result.error.message);
            submit.disabled = false;
          }
        }, function () { showError(); submit.disabled = false; });
    });
  }

  function adyen() {
    var web = window.AdyenWeb;
    web.AdyenCheckout({
      session: { id: d.sessionId, sessionData: d.sessionData },
      clientKey: d.clientKey, environment: d.environment, locale: d.locale,
      onPaymentCompleted: function (result) {
        back({ sessionId: d.sessionId, sessionResult: result.sessionResult || "" });
      },
      onPaymentFailed: function (result) {
        back({ sessionId: d.sessionId, sessionResult: (result && result.sessionResult) || "" });
      },
      onError: function (error) { showError(error && error.message); }
    }).then(function (checkout) {
      var target = document.getElementById("dropin");
      target.textContent = "";
      new web.Dropin(checkout).mount(target);
    }, function () { showError(); });
  }

  try {
    if (d.provider === "stripe") stripe();
    else if (d.provider === "adyen") adyen();
  } catch (e) {
    showError();
  }
})();
