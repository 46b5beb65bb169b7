/*
 * leadsite web form: paste into any page (see README, "The web form").
 *
 *   <form data-leadsite-form data-endpoint="https://leads.example.com/api/leads" data-api-key="KEY"> ... </form>
 *   <script src="https://leads.example.com/static/leads/leadsite-form.js" defer></script>
 *
 * What it promises the seller: a submission survives a flaky connection without being lost or doubled.
 * - One Idempotency-Key per submission (per distinct body): every retry of it sends the same key, so a
 *   lead the server accepted whose answer was lost is answered again, never created twice.
 * - Network errors, 429 and 5xx are retried with exponential backoff and jitter (Retry-After is honoured).
 * - 422 shows the server's message next to each field; 4xx other than 422/429 shows a plain message.
 * - The honeypot field (name="website") stays in the body: a bot that fills it is quietly kept out.
 * No dependencies, no build step, no third-party requests.
 */
(function () {
  "use strict";

  var RETRYABLE = { 408: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true };
  var NUMBER_FIELDS = {
    asking_price: true, latitude: true, longitude: true, beds: true, baths: true,
    living_area_sqft: true, lot_sqft: true, year_built: true
  };

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function backoff(attempt, retryAfter, baseMs, maxMs) {
    var seconds = parseFloat(retryAfter);
    if (isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, maxMs);
    var ceiling = Math.min(maxMs, baseMs * Math.pow(2, attempt - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
  }

  function collect(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") return;
      if (el.type === "checkbox") {
        body[el.name] = el.checked;
        if (el.name === "consent" && el.dataset.consentText) body.consent_text = el.dataset.consentText;
        return;
      }
      if (el.type === "radio" && !el.checked) return;
      var value = (el.value || "").trim();
      if (value === "") return;
      if (NUMBER_FIELDS[el.name] && isFinite(Number(value))) value = Number(value);
      body[el.name] = value;
    });
    if (!body.page_url) body.page_url = window.location.href.split("#")[0];
    var params = new URLSearchParams(window.location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (name) {
      if (!body[name] && params.get(name)) body[name] = params.get(name);
    });
    return body;
  }

  function fieldMessages(detail) {
    // The API answers 422 with {"detail": {"field": ["message", ...]}} or a list of {loc, msg}.
    var out = {};
    if (Array.isArray(detail)) {
      detail.forEach(function (item) {
        var loc = (item && item.loc) || [];
        var field = loc.length ? String(loc[loc.length - 1]) : "__all__";
        (out[field] = out[field] || []).push(item.msg || String(item));
      });
    } else if (detail && typeof detail === "object") {
      Object.keys(detail).forEach(function (field) {
        var messages = detail[field];
        out[field] = Array.isArray(messages) ? messages.map(String) : [String(messages)];
      });
    } else if (detail) {
      out.__all__ = [String(detail)];
    }
    return out;
  }

  function LeadForm(form) {
    this.form = form;
    this.endpoint = form.dataset.endpoint || "/api/leads";
    this.apiKey = form.dataset.apiKey || "";
    this.maxAttempts = parseInt(form.dataset.maxAttempts || "6", 10);
    this.baseDelayMs = parseInt(form.dataset.retryBaseMs || "1000", 10);
    this.maxDelayMs = parseInt(form.dataset.retryMaxMs || "20000", 10);
    this.status = form.querySelector("[data-leadsite-status]");
    this.pending = null; // {body: string, key: string}: the submission in flight or last interrupted
    this.busy = false;
    form.addEventListener("submit", this.onSubmit.bind(this));
  }

  LeadForm.prototype.say = function (text, kind) {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.dataset.state = kind;
  };

  LeadForm.prototype.clearErrors = function () {
    Array.prototype.forEach.call(this.form.querySelectorAll("[data-leadsite-error]"), function (el) {
      el.remove();
    });
    Array.prototype.forEach.call(this.form.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  };

  LeadForm.prototype.showErrors = function (messages) {
    var form = this.form;
    var general = [];
    Object.keys(messages).forEach(function (field) {
      var input = form.elements.namedItem(field);
      if (!input || !input.insertAdjacentElement) {
        general.push(messages[field].join(" "));
        return;
      }
      input.setAttribute("aria-invalid", "true");
      var note = document.createElement("small");
      note.setAttribute("data-leadsite-error", field);
      note.className = "leadsite-error";
      note.textContent = messages[field].join(" ");
      input.insertAdjacentElement("afterend", note);
    });
    this.say(
      "Please check the highlighted fields." + (general.length ? " " + general.join(" ") : ""),
      "invalid"
    );
  };

  LeadForm.prototype.onSubmit = function (event) {
    event.preventDefault();
    if (this.busy) return; // a double click is one submission
    var body = JSON.stringify(collect(this.form));
    // The same body after an interrupted attempt keeps its key (the server may already have it);
    // an edited body is a new submission with a new key (the old key with a new body would be 409).
    if (!this.pending || this.pending.body !== body) this.pending = { body: body, key: newKey() };
    this.send(this.pending);
  };

  LeadForm.prototype.send = async function (submission) {
    var button = this.form.querySelector("[type=submit]");
    this.busy = true;
    if (button) button.disabled = true;
    this.clearErrors();
    this.say("Sending…", "sending");
    try {
      for (var attempt = 1; attempt <= this.maxAttempts; attempt++) {
        var response = null;
        try {
          response = await fetch(this.endpoint, {
            method: "POST",
            mode: "cors",
            credentials: "omit",
            headers: {
              "Content-Type": "application/json",
              "X-Api-Key": this.apiKey,
              "Idempotency-Key": submission.key
            },
            body: submission.body
          });
        } catch (networkError) {
          response = null; // offline, reset, DNS: the server may or may not have it; retry with the same key
        }
        if (response && (response.status === 200 || response.status === 201)) {
          this.pending = null;
          this.form.reset();
          this.form.dispatchEvent(new CustomEvent("leadsite:sent", { detail: { attempts: attempt } }));
          this.say("Thank you! We received your request and will be in touch shortly.", "sent");
          return;
        }
        if (response && response.status === 422) {
          var payload = await response.json().catch(function () { return {}; });
          this.pending = null; // the seller will edit the form: a new submission
          this.showErrors(fieldMessages(payload.detail));
          return;
        }
        if (response && !RETRYABLE[response.status]) {
          this.pending = null;
          this.say("Sorry, we could not take your request (error " + response.status + "). Please call us.", "error");
          return;
        }
        if (attempt < this.maxAttempts) {
          this.say("Connection trouble, trying again…", "retrying");
          var retryAfter = response ? response.headers.get("Retry-After") : null;
          await sleep(backoff(attempt, retryAfter, this.baseDelayMs, this.maxDelayMs));
        }
      }
      // Out of attempts: keep the key, so pressing Send again cannot create a second lead.
      this.say("We could not reach our server. Please check your connection and press Send again.", "offline");
    } finally {
      this.busy = false;
      if (button) button.disabled = false;
    }
  };

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-leadsite-form]"), function (form) {
      if (!form.leadsiteForm) form.leadsiteForm = new LeadForm(form);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
