/* MediaBeat admin dashboard: confirmations, in-place mutations through the JSON API, live polling.
   No inline script is allowed by the Content-Security-Policy; every text from the server goes in with textContent. */
(function () {
  "use strict";

  var POLL_MS = 2500;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var serverNow = Date.parse((document.querySelector('meta[name="server-now"]') || {}).content || "");
  var clockSkew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  /* -- talking to the API ----------------------------------------------------------------- */

  function errorMessage(status, body) {
    if (body && body.error && body.error.message) { return body.error.message; }
    if (status === 0) { return "The server cannot be reached. Check that MediaBeat is running."; }
    return "The server answered " + status + ".";
  }

  var mutations = 0;  // a page refresh that started before a change would undo it on screen: see refreshRegions

  function api(method, url, body, contentType) {
    var headers = { "Accept": "application/json" };
    if (method !== "GET") { headers["X-CSRF-Token"] = csrf; mutations++; }
    var payload;
    if (body !== undefined) {
      headers["Content-Type"] = contentType || "application/json";
      payload = contentType ? body : JSON.stringify(body);
    }
    return fetch(url, { method: method, headers: headers, body: payload, credentials: "same-origin" })
      .then(function (response) {
        return response.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (response.status === 401 && document.body.getAttribute("data-page") !== "login") {
            window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
          }
          return { ok: response.ok, status: response.status, data: data, message: response.ok ? "" : errorMessage(response.status, data) };
        });
      }, function () {
        return { ok: false, status: 0, data: null, message: errorMessage(0, null) };
      });
  }

  /* -- feedback: banner, toast, confirmation ------------------------------------------------- */

  function showBanner(message) {
    var banner = $("#banner");
    if (!banner) { return; }
    $("#banner-text").textContent = message;
    banner.hidden = false;
  }

  function hideBanner() { var banner = $("#banner"); if (banner) { banner.hidden = true; } }

  var toastTimer = null;
  function toast(message) {
    var box = $("#toast");
    if (!box) { return; }
    box.textContent = message;
    box.classList.add("is-visible");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.classList.remove("is-visible"); }, 4000);
  }

  function confirmAction(title, text, okLabel) {
    var dialog = $("#confirm");
    if (!dialog || typeof dialog.showModal !== "function") { return Promise.resolve(window.confirm(text)); }
    $("#confirm-title").textContent = title;
    $("#confirm-text").textContent = text;
    $("#confirm-ok").textContent = okLabel || "Confirm";
    dialog.returnValue = "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
      $("#confirm-ok").focus();
    });
  }

  /* -- rendering bits ------------------------------------------------------------------------ */

  var FAILED = { failed: 1, timed_out: 1, abandoned: 1 };
  function statusClass(status) {
    if (!status) { return "none"; }
    if (FAILED[status]) { return "bad"; }
    return { succeeded: "good", running: "busy", queued: "wait", skipped: "muted" }[status] || "muted";
  }

  /* The same words as labels.py for the statuses the script shows itself. */
  var LABELS = { running: "Running", succeeded: "Succeeded", failed: "Failed", timed_out: "Timed out", skipped: "Skipped", abandoned: "Abandoned", cancelled: "Cancelled", queued: "Queued" };
  function label(status) {
    if (!status) { return "Never run"; }
    var words = status.replace(/_/g, " ");
    return LABELS[status] || words.charAt(0).toUpperCase() + words.slice(1);
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge-" + statusClass(status);
    span.setAttribute("data-status", status || "");
    span.textContent = label(status);
    return span;
  }

  function exact(date) { return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"); }

  /* -- local time: the server writes UTC, the reader sees their own zone (UTC stays on hover) ---- */

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) { if (parts[i].type === "timeZoneName") { return parts[i].value; } }
    } catch (e) { /* an old browser: no zone name, the numbers are still local */ }
    return "";
  }

  function localTime(date, withSeconds) {
    var text = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + (withSeconds ? ":" + pad(date.getSeconds()) : "");
    var zone = zoneName(date);
    return zone ? text + " " + zone : text;
  }

  function hoverText(date) { return localTime(date, true) + " (" + exact(date) + ")"; }

  function localiseTimes(root) {
    $all("time[datetime]", root).forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      if (el.hasAttribute("data-local")) {
        el.textContent = localTime(date, true);
        el.setAttribute("title", exact(date));
      } else if (el.hasAttribute("data-relative")) {
        el.setAttribute("title", hoverText(date));
      }
    });
    /* Titles that name an instant (sparkline ticks): the local time first, UTC after it. */
    $all("[data-time][title]", root).forEach(function (el) {
      var date = new Date(el.getAttribute("data-time"));
      var utc = isNaN(date.getTime()) ? "" : exact(date);
      var title = el.getAttribute("title");
      if (utc && title.indexOf(utc) !== -1 && title.indexOf("(" + utc + ")") === -1) { el.setAttribute("title", title.replace(utc, hoverText(date))); }
    });
    $all("text[data-time]", root).forEach(function (el) {
      var date = new Date(el.getAttribute("data-time"));
      if (isNaN(date.getTime())) { return; }
      el.textContent = el.getAttribute("data-days") === "true"
        ? date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate())
        : pad(date.getHours()) + ":" + pad(date.getMinutes());
    });
    var zoneNote = $("#chart-zone", root);
    if (zoneNote) { zoneNote.textContent = "Times in your time zone (" + (zoneName(new Date()) || "local") + "). Hover or focus a bar for its run."; }
  }

  function relative(date) {
    var seconds = (date.getTime() - (Date.now() + clockSkew)) / 1000;
    var span = Math.abs(seconds);
    if (span < 5) { return "just now"; }
    var units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    for (var i = 0; i < units.length; i++) {
      if (span >= units[i][1]) {
        var amount = Math.floor(span / units[i][1]) + " " + units[i][0];
        return seconds > 0 ? "in " + amount : amount + " ago";
      }
    }
    return "just now";
  }

  function timeElement(iso, empty) {
    if (!iso) {
      var none = document.createElement("span");
      none.className = "muted";
      none.textContent = empty;
      return none;
    }
    var date = new Date(iso);
    var el = document.createElement("time");
    el.setAttribute("datetime", date.toISOString());
    el.setAttribute("title", hoverText(date));
    el.setAttribute("data-relative", "");
    el.textContent = relative(date);
    return el;
  }

  function refreshRelativeTimes() {
    $all("time[data-relative]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date.getTime())) { el.textContent = relative(date); }
    });
  }

  function replaceContent(container, node) {
    if (!container) { return; }
    while (container.firstChild) { container.removeChild(container.firstChild); }
    container.appendChild(node);
  }

  function setSwitch(button, on) {
    button.setAttribute("aria-checked", on ? "true" : "false");
    var text = $('[data-field="enabled-text"]', button);
    if (text) { text.textContent = on ? "On" : "Off"; }
  }

  function busy(button, state) {
    button.disabled = state;
    button.setAttribute("aria-busy", state ? "true" : "false");
  }

  /* -- tasks: toggle, run now, live rows ------------------------------------------------------- */

  function taskOf(el) { var holder = el.closest("[data-task-id]") || $("#task-head"); return holder ? { id: holder.getAttribute("data-task-id"), name: holder.getAttribute("data-task-name"), el: holder } : null; }

  function renderTaskRow(row, task) {
    if (!row || !task) { return; }
    row.classList.toggle("is-disabled", !task.enabled);
    $all('[data-action="toggle"]', row).forEach(function (b) { setSwitch(b, task.enabled); });
    replaceContent($('[data-field="status"]', row), badge(task.last_status));
    replaceContent($('[data-field="last_run_at"]', row), timeElement(task.last_run_at, "never"));
    var next = $('[data-field="next_run_at"]', row);
    if (next) {
      if (task.enabled) { replaceContent(next, timeElement(task.next_run_at, "not scheduled")); }
      else { var paused = document.createElement("span"); paused.className = "muted"; paused.textContent = "paused"; replaceContent(next, paused); }
    }
  }

  function onToggle(button) {
    var task = taskOf(button);
    var on = button.getAttribute("aria-checked") === "true";
    var verb = on ? "Disable" : "Enable";
    var text = on ? "It will not run on its schedule until it is enabled again. Run now still works."
                  : "It will run on its schedule again from the next fire time.";
    confirmAction(verb + " " + task.name + "?", text, verb).then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/scheduler/tasks/" + task.id + "/toggle", { enabled: !on }).then(function (res) {
        busy(button, false);
        if (!res.ok) { showBanner("Could not " + verb.toLowerCase() + " " + task.name + ": " + res.message); return; }
        hideBanner();
        $all('[data-task-id="' + task.id + '"]').forEach(function (row) { renderTaskRow(row, res.data); });
        toast(task.name + " is " + (res.data.enabled ? "enabled" : "disabled") + ".");
        pollSoon();
      });
    });
  }

  var watchedRuns = {};

  function onRunNow(button) {
    var task = taskOf(button);
    confirmAction("Run " + task.name + " now?", "It starts at once, outside its schedule, and is recorded as a manual run by you.", "Run now").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/scheduler/tasks/" + encodeURIComponent(task.name) + "/run").then(function (res) {
        busy(button, false);
        if (!res.ok) { showBanner("Could not run " + task.name + ": " + res.message); return; }
        hideBanner();
        var run = res.data;
        $all('[data-task-id="' + task.id + '"]').forEach(function (row) {
          replaceContent($('[data-field="status"]', row), badge(run.status));
          replaceContent($('[data-field="last_run_at"]', row), timeElement(run.started_at, "never"));
        });
        var headBadge = $("#task-head h1 .badge");
        if (headBadge) { headBadge.replaceWith(badge(run.status)); }
        toast("Run " + run.id + " of " + task.name + " started.");
        watchedRuns[run.id] = task;
        pollSoon();
      });
    });
  }

  function checkWatchedRuns() {
    Object.keys(watchedRuns).forEach(function (id) {
      api("GET", "/api/v1/scheduler/runs/" + id).then(function (res) {
        if (!res.ok || res.data.status === "running") { return; }
        var task = watchedRuns[id];
        delete watchedRuns[id];
        var run = res.data;
        var message = "Run " + run.id + " of " + task.name + ": " + label(run.status).toLowerCase() + ".";
        if (FAILED[run.status]) { showBanner(message + " " + (run.error || "")); } else { toast(message); }
        var headBadge = $("#task-head h1 .badge");
        if (headBadge) { headBadge.replaceWith(badge(run.status)); }
      });
    });
  }

  /* -- polling --------------------------------------------------------------------------------- */

  var pollTimer = null;
  var polling = false;

  function setLive(state, text) {
    var live = $("#live-state");
    if (!live) { return; }
    live.setAttribute("data-state", state);
    $("#live-text").textContent = text;
  }

  function pollScheduler() {
    return Promise.all([api("GET", "/api/v1/scheduler/stats"), api("GET", "/api/v1/scheduler/tasks")]).then(function (results) {
      var stats = results[0], tasks = results[1];
      if (!stats.ok || !tasks.ok) {
        var failed = !stats.ok ? stats : tasks;
        showBanner("The scheduler API is not answering: " + failed.message + " Retrying…");
        setLive("down", "Offline");
        return;
      }
      setLive("up", "Live");
      var bannerText = $("#banner-text");
      if (bannerText && bannerText.textContent.indexOf("The scheduler API is not answering") === 0) { hideBanner(); }
      $all("[data-stat]").forEach(function (el) {
        var key = el.getAttribute("data-stat");
        if (stats.data[key] !== undefined) { el.textContent = String(stats.data[key]); }
      });
      tasks.data.items.forEach(function (task) {
        $all('tr[data-task-id="' + task.id + '"]').forEach(function (row) { renderTaskRow(row, task); });
      });
    });
  }

  /* Pages without their own API poll (runs, feeds, jobs) fetch themselves and swap in their live regions,
     except one the reader is using (focus inside it) or while a confirmation is open. */
  var LIVE_PAGES = { runs: 1, feeds: 1, jobs: 1 };

  function refreshRegions() {
    var url = window.location.pathname + window.location.search;
    var before = mutations;
    return fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" }).then(function (response) {
      if (response.redirected || response.status === 401) { window.location.reload(); return; }
      if (!response.ok) { setLive("down", "Offline"); return; }
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var dialog = $("#confirm");
        if ((dialog && dialog.open) || before !== mutations) { return; }
        $all("[data-live-region]").forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (!replacement || region.contains(document.activeElement)) { return; }
          var adopted = document.importNode(replacement, true);
          region.replaceWith(adopted);
          localiseTimes(adopted);
        });
        setLive("up", "Live");
      });
    }, function () { setLive("down", "Offline"); });
  }

  function pollOnce() {
    if (polling || document.hidden) { return; }
    polling = true;
    var work = [];
    var page = document.body.getAttribute("data-page");
    if (page === "scheduler") { work.push(pollScheduler()); }
    if (LIVE_PAGES[page] && $("[data-live-region]")) { work.push(refreshRegions()); }
    checkWatchedRuns();
    Promise.all(work).then(function () { polling = false; refreshRelativeTimes(); }, function () { polling = false; });
  }

  function pollSoon() { clearTimeout(pollTimer); pollTimer = setTimeout(loop, 400); }
  function loop() { pollOnce(); clearTimeout(pollTimer); pollTimer = setTimeout(loop, POLL_MS); }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { setLive("paused", "Paused"); clearTimeout(pollTimer); } else { loop(); }
  });

  /* -- the run page: follow a running run until it ends ---------------------------------------- */

  function followRun() {
    var holder = $("#run-live");
    if (!holder || holder.getAttribute("data-run-status") !== "running") { return; }
    var id = holder.getAttribute("data-run-id");
    var note = document.createElement("span");
    note.className = "live";
    note.setAttribute("data-state", "up");
    note.textContent = "Running… this page updates when it ends";
    holder.appendChild(note);
    var timer = setInterval(function () {
      if (document.hidden) { return; }
      api("GET", "/api/v1/scheduler/runs/" + id).then(function (res) {
        if (res.ok && res.data.status !== "running") { clearInterval(timer); window.location.reload(); }
      });
    }, POLL_MS);
  }

  /* -- the run filters: the server reads the From and Until fields as UTC; people type local times ------ */

  function shiftField(input, toLocal) {
    if (!input.value) { return; }
    var parts = input.value.split(/[-T:]/).map(function (n) { return parseInt(n, 10); });
    if (parts.length < 5 || parts.some(isNaN)) { return; }
    var date = toLocal
      ? new Date(Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4]))
      : new Date(parts[0], parts[1] - 1, parts[2], parts[3], parts[4]);
    var y = toLocal ? date.getFullYear() : date.getUTCFullYear();
    var mo = toLocal ? date.getMonth() : date.getUTCMonth();
    var d = toLocal ? date.getDate() : date.getUTCDate();
    var h = toLocal ? date.getHours() : date.getUTCHours();
    var mi = toLocal ? date.getMinutes() : date.getUTCMinutes();
    input.value = y + "-" + pad(mo + 1) + "-" + pad(d) + "T" + pad(h) + ":" + pad(mi);
  }

  function localiseRunFilters() {
    var form = $("#run-filters");
    if (!form) { return; }
    var fields = [form.elements.since, form.elements.until];
    fields.forEach(function (input) { shiftField(input, true); });
    var zone = $("#filter-zone");
    if (zone) { zone.textContent = "your time zone, " + (zoneName(new Date()) || "local"); }
    form.addEventListener("submit", function () { fields.forEach(function (input) { shiftField(input, false); }); });
  }

  /* -- the task settings form -------------------------------------------------------------------- */

  function clearErrors(form) {
    $all(".field-error", form).forEach(function (el) { el.hidden = true; el.textContent = ""; });
    $all("[aria-invalid]", form).forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var formError = $(".form-error", form);
    if (formError) { formError.hidden = true; formError.textContent = ""; }
  }

  function showErrors(form, res) {
    var details = res.data && res.data.error && Array.isArray(res.data.error.details) ? res.data.error.details : [];
    var placed = false;
    details.forEach(function (detail) {
      var slot = $('[data-error-for="' + (detail.field || "") + '"]', form);
      if (!slot) { return; }
      slot.textContent = detail.message;
      slot.hidden = false;
      var input = form.elements[detail.field];
      if (input) { input.setAttribute("aria-invalid", "true"); if (!placed) { input.focus(); } }
      placed = true;
    });
    if (!placed) {
      var formError = $(".form-error", form);
      if (formError) { formError.textContent = res.message; formError.hidden = false; }
    }
  }

  function renderUpcoming(times) {
    var list = $("#upcoming");
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    times.forEach(function (iso) {
      var li = document.createElement("li");
      var el = document.createElement("time");
      el.setAttribute("datetime", iso);
      el.textContent = iso.replace("T", " ").slice(0, 16) + " " + (iso.length > 19 ? iso.slice(19) : "");
      el.setAttribute("title", exact(new Date(iso)));
      li.appendChild(el);
      var rel = document.createElement("span");
      rel.className = "muted small";
      rel.textContent = " " + relative(new Date(iso));
      li.appendChild(rel);
      list.appendChild(li);
    });
  }

  /* The settings both task forms share (see the task_settings macro). */
  function taskSettings(form) {
    var timeout = parseInt(form.elements.timeout_s.value, 10);
    var priority = parseInt(form.elements.priority.value, 10);
    return {
      cron: form.elements.cron.value.trim(),
      timezone: form.elements.timezone.value.trim(),
      misfire_policy: form.elements.misfire_policy.value,
      overlap_policy: form.elements.overlap_policy.value,
      timeout_s: isNaN(timeout) ? 0 : timeout,
      priority: isNaN(priority) ? 0 : priority,
      keep_empty_runs: form.elements.keep_empty_runs.checked,
      description: form.elements.description.value,
      after: chosen(form.elements.after),
      on_failure_of: chosen(form.elements.on_failure_of)
    };
  }

  function chosen(select) {
    return Array.prototype.filter.call(select.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
  }

  /* A task's chains in words, as the chain_summary macro writes them, from the API's task. */
  function renderChains(task) {
    function links(names) {
      var span = document.createDocumentFragment();
      names.forEach(function (name, i) {
        if (i) { span.appendChild(document.createTextNode(", ")); }
        var a = document.createElement("a");
        a.href = "/app/admin/scheduler/tasks/" + encodeURIComponent(name);
        a.textContent = name;
        span.appendChild(a);
      });
      return span;
    }
    function fill(id, names, before, after) {
      var el = $(id);
      if (!el) { return; }
      while (el.firstChild) { el.removeChild(el.firstChild); }
      el.hidden = !names.length;
      if (!names.length) { return; }
      el.appendChild(document.createTextNode(before));
      el.appendChild(links(names));
      el.appendChild(document.createTextNode(after));
    }
    var many = task.after.length > 1;
    fill("#t-upstream", task.after, " · runs after " + (many ? "all of " : ""), many ? " succeed (in the same cycle)" : " succeeds");
    fill("#t-on-failure-of", task.on_failure_of, " · runs when " + (task.on_failure_of.length > 1 ? "any of " : ""), " fails");
  }

  /* A schedule being typed: its meaning and next fire times, from the API, as you type. */
  var previewTimer = null;
  var previewSeq = 0;

  function previewSchedule(form) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      var seq = ++previewSeq;
      var cron = form.elements.cron.value.trim();
      var zone = form.elements.timezone.value.trim() || "UTC";
      var words = $("#t-cron-words", form), next = $("#t-cron-next", form);
      var slots = { cron: $("#t-cron-error", form), timezone: $("#t-timezone-error", form) };
      if (!cron) { return; }
      var query = "?count=3&cron=" + encodeURIComponent(cron) + "&timezone=" + encodeURIComponent(zone);
      api("GET", "/api/v1/scheduler/cron/preview" + query).then(function (res) {
        if (seq !== previewSeq) { return; }
        Object.keys(slots).forEach(function (key) { slots[key].hidden = true; slots[key].textContent = ""; form.elements[key].removeAttribute("aria-invalid"); });
        if (!res.ok) {
          words.textContent = "This schedule is not valid.";
          next.textContent = "";
          var detail = res.data && res.data.error && res.data.error.details && res.data.error.details[0];
          var slot = detail && slots[detail.field];
          if (slot) { slot.textContent = detail.message; slot.hidden = false; form.elements[detail.field].setAttribute("aria-invalid", "true"); }
          return;
        }
        words.textContent = res.data.description || cron;
        next.textContent = res.data.times.length
          ? "Next: " + res.data.times.map(function (iso) { return iso.replace("T", " ").slice(0, 16); }).join(", ") + " (" + res.data.timezone + ")"
          : "It never fires again.";
      });
    }, 250);
  }

  function cancelPreview() { clearTimeout(previewTimer); previewSeq++; }

  function onCronPreset(button) {
    var form = button.closest("form");
    form.elements.cron.value = button.getAttribute("data-cron");
    form.elements.cron.focus();
    previewSchedule(form);
  }

  function onTaskForm(form) {
    var task = taskOf(form);
    var body = taskSettings(form);
    clearErrors(form);
    confirmAction("Save " + task.name + "?", "The new settings apply from the next fire time.", "Save").then(function (ok) {
      if (!ok) { return; }
      var submit = $('button[type="submit"]', form);
      busy(submit, true);
      api("PATCH", "/api/v1/scheduler/tasks/" + task.id, body).then(function (res) {
        busy(submit, false);
        if (!res.ok) { showErrors(form, res); return; }
        var words = $("#t-cron-words");
        if (words && res.data.cron_description) { words.textContent = res.data.cron_description; }
        renderChains(res.data);
        cancelPreview();
        $("#t-cron-next").textContent = "";
        toast("Saved " + task.name + ".");
        api("GET", "/api/v1/scheduler/tasks/" + task.id + "/upcoming?count=10").then(function (up) { if (up.ok) { renderUpcoming(up.data.times); } });
      });
    });
  }

  function onNewTaskForm(form) {
    clearErrors(form);
    var body = taskSettings(form);
    body.name = form.elements.name.value.trim();
    body.handler = form.elements.handler.value;
    body.enabled = form.elements.enabled.checked;
    var schedule = $("#t-cron-words", form).textContent;
    confirmAction("Create " + (body.name || "this task") + "?", "It runs " + body.handler + ": " + schedule + " (" + body.timezone + ").", "Create task").then(function (ok) {
      if (!ok) { return; }
      var submit = $('button[type="submit"]', form);
      busy(submit, true);
      api("POST", "/api/v1/scheduler/tasks", body).then(function (res) {
        busy(submit, false);
        if (!res.ok) { showErrors(form, res); return; }
        window.location.assign("/app/admin/scheduler/tasks/" + encodeURIComponent(res.data.name));
      });
    });
  }

  function onDeleteTask(button) {
    var task = taskOf(button);
    confirmAction("Delete " + task.name + "?", "The task and its whole run history are deleted. This cannot be undone.", "Delete").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("DELETE", "/api/v1/scheduler/tasks/" + task.id).then(function (res) {
        busy(button, false);
        if (!res.ok) { showBanner("Could not delete " + task.name + ": " + res.message); return; }
        window.location.assign("/app/admin/scheduler");
      });
    });
  }

  function onAlertsMute(button) {
    var task = taskOf(button);
    var seconds = parseInt(button.getAttribute("data-seconds"), 10) || 0;
    var until = seconds > 0 ? new Date(Date.now() + clockSkew + seconds * 1000).toISOString() : null;
    busy(button, true);
    api("PATCH", "/api/v1/scheduler/tasks/" + task.id + "/alerts", { mute_until: until }).then(function (res) {
      busy(button, false);
      if (!res.ok) { showBanner("Could not change the alerts of " + task.name + ": " + res.message); return; }
      window.location.reload();
    });
  }

  /* -- sign in and out ------------------------------------------------------------------------- */

  function sameOriginPath(target) {
    if (!target || !/^\/(?![\/\\])[!-~]*$/.test(target)) { return null; }
    var url = new URL(target, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : null;
  }

  function onLogin(form) {
    var error = $("#login-error");
    error.hidden = true;
    var email = form.elements.email.value.trim();
    var password = form.elements.password.value;
    if (!email || !password) { error.textContent = "Enter your email and password."; error.hidden = false; return; }
    var submit = $('button[type="submit"]', form);
    busy(submit, true);
    api("POST", "/api/v1/auth/login", { email: email, password: password }).then(function (res) {
      busy(submit, false);
      if (!res.ok) {
        error.textContent = res.status === 422 ? "Enter your email and password." : res.message;
        error.hidden = false;
        form.elements.password.select();
        return;
      }
      // Members read their organisation's articles; the admin pages would only refuse them.
      // data-next is the server's safe_next(); checked again here so that only a path on this site is followed.
      var next = sameOriginPath(form.getAttribute("data-next")) || "/app/admin/scheduler";
      if (res.data && res.data.user && res.data.user.role !== "admin" && next.indexOf("/app/admin") === 0) {
        next = "/app/articles";
      }
      window.location.assign(next);
    });
  }

  function onPasswordForm(form) {
    clearErrors(form);
    var current = form.elements.current_password.value;
    var fresh = form.elements.new_password.value;
    var repeat = form.elements.repeat_password.value;
    if (!current) { showErrors(form, { data: { error: { details: [{ field: "current_password", message: "Enter your current password." }] } } }); return; }
    if (fresh !== repeat) { showErrors(form, { data: { error: { details: [{ field: "repeat_password", message: "The two new passwords differ." }] } } }); return; }
    var submit = $('button[type="submit"]', form);
    busy(submit, true);
    api("POST", "/api/v1/auth/password", { current_password: current, new_password: fresh }).then(function (res) {
      busy(submit, false);
      if (!res.ok) { showErrors(form, res); return; }
      csrf = res.data.csrf_token || csrf;  // the change started a new session, with a new CSRF token
      form.reset();
      toast("Your password is changed.");
      var next = form.getAttribute("data-next");
      if (next && next !== window.location.pathname) { setTimeout(function () { window.location.assign(next); }, 900); }
    });
  }

  /* -- the duration chart's tooltip ------------------------------------------------------------ */

  function showChartTip(link) {
    var tip = $("#chart-tip"), figure = $("#duration-chart");
    if (!tip || !figure) { return; }
    var date = new Date(link.getAttribute("data-time"));
    tip.textContent = "";
    var head = document.createElement("strong");
    head.textContent = "Run " + link.getAttribute("data-run") + ": " + link.getAttribute("data-status-label");
    var body = document.createElement("span");
    body.textContent = link.getAttribute("data-duration") + " · started " + localTime(date, true);
    var utc = document.createElement("span");
    utc.className = "muted";
    utc.textContent = exact(date);
    tip.appendChild(head); tip.appendChild(body);
    if (body.textContent.slice(-4) !== " UTC") { tip.appendChild(utc); }
    tip.hidden = false;
    var box = link.getBoundingClientRect(), frame = figure.getBoundingClientRect();
    var left = box.left - frame.left + box.width / 2 - tip.offsetWidth / 2;
    tip.style.left = Math.max(0, Math.min(left, frame.width - tip.offsetWidth)) + "px";
    tip.style.top = Math.max(0, box.top - frame.top - tip.offsetHeight - 8) + "px";
  }

  function hideChartTip() { var tip = $("#chart-tip"); if (tip) { tip.hidden = true; } }

  function onLogout() {
    api("POST", "/api/v1/auth/logout").then(function () { window.location.assign("/login"); });
  }

  /* -- feeds and jobs -------------------------------------------------------------------------- */

  function onFeedForm(form) {
    clearErrors(form);
    var url = form.elements.url.value.trim();
    var org = parseInt(form.elements.org_id.value, 10);
    confirmAction("Add this feed?", url, "Add feed").then(function (ok) {
      if (!ok) { return; }
      var check = !(form.elements.no_check && form.elements.no_check.checked);
      api("POST", "/api/v1/feeds", { url: url, org_id: isNaN(org) ? null : org, check: check }).then(function (res) {
        if (!res.ok) { showErrors(form, res); return; }
        var found = (res.data.found || [])[0];
        var about = found ? " " + (found.title || found.url) + ", " + found.entries + " entries." : "";
        var more = (res.data.also_found || []).length ? " The site names " + res.data.also_found.length + " more feeds." : "";
        var news = (res.data.sitemaps || []).filter(function (m) { return m.reason === null; });
        var maps = news.length ? " Its robots.txt lists " + news.length + " news sitemap" + (news.length > 1 ? "s" : "") + ": " +
          news.map(function (m) { return m.url; }).join(", ") + "." : "";
        toast((res.status === 201 ? "Feed added." : "The organisation has this feed already.") + about + more + maps);
        setTimeout(function () { window.location.reload(); }, 800);
      });
    });
  }

  function onOpmlForm(form) {
    clearErrors(form);
    var file = form.elements.file.files[0];
    var errorBox = $("#opml-form-error");
    if (!file) { errorBox.textContent = "Choose an OPML file first."; errorBox.hidden = false; return; }
    var org = form.elements.org_id.value;
    confirmAction("Import " + file.name + "?", "Every feed in it is added; feeds the organisation has are kept.", "Import").then(function (ok) {
      if (!ok) { return; }
      file.text().then(function (text) {
        api("POST", "/api/v1/feeds/import?org_id=" + encodeURIComponent(org), text, "text/x-opml").then(function (res) {
          if (!res.ok) { errorBox.textContent = res.message; errorBox.hidden = false; return; }
          toast("Imported: " + res.data.added + " new, " + res.data.existing + " already there.");
          setTimeout(function () { window.location.reload(); }, 800);
        });
      });
    });
  }

  function onFeedToggle(button) {
    var row = button.closest("[data-feed-id]");
    var id = row.getAttribute("data-feed-id");
    var on = button.getAttribute("aria-checked") === "true";
    var verb = on ? "Disable" : "Enable";
    confirmAction(verb + " this feed?", on ? "It will not be fetched until enabled again." : "It is fetched again and its failure backoff is cleared.", verb).then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("PATCH", "/api/v1/feeds/" + id, on ? { active: false, reason: "disabled from the dashboard" } : { active: true }).then(function (res) {
        busy(button, false);
        if (!res.ok) { showBanner("Could not change the feed: " + res.message); return; }
        setSwitch(button, res.data.active);
        row.classList.toggle("is-disabled", !res.data.active);
        var next = document.createElement("span");
        next.className = "muted";
        next.textContent = res.data.active ? "at the next fetch run" : "paused";
        replaceContent($('[data-field="next_fetch"]', row), next);
        toast("Feed " + (res.data.active ? "enabled" : "disabled") + ".");
      });
    });
  }

  function onFeedFetch(button) {
    var row = button.closest("[data-feed-id]");
    var id = row.getAttribute("data-feed-id");
    busy(button, true);
    api("POST", "/api/v1/feeds/" + id + "/fetch").then(function (res) {
      busy(button, false);
      if (!res.ok) { showBanner("Could not fetch the feed: " + res.message); return; }
      var d = res.data;
      var why = d.feed.interval_reason ? " Next: " + d.feed.next_fetch_at + " (" + d.feed.interval_reason + ")." : "";
      toast("Feed " + d.outcome + (d.error ? ": " + d.error : "") + "; " + d.new_jobs + " new crawl jobs." + why);
    });
  }

  function onFeedPriority(select) {
    var row = select.closest("[data-feed-id]");
    var id = row.getAttribute("data-feed-id");
    var previous = select.getAttribute("data-current");
    var level = parseInt(select.value, 10);
    confirmAction("Set this feed's priority to " + level + "?", "Its articles, including those already queued, are crawled before those of feeds with a lower priority.", "Set priority").then(function (ok) {
      if (!ok) { select.value = previous; return; }
      select.disabled = true;
      api("PATCH", "/api/v1/feeds/" + id, { priority: level }).then(function (res) {
        select.disabled = false;
        if (!res.ok) { select.value = previous; showBanner("Could not change the priority: " + res.message); return; }
        select.setAttribute("data-current", String(res.data.priority));
        toast("Priority " + res.data.priority + " set.");
      });
    });
  }

  function onRetryJob(button) {
    var row = button.closest("[data-job-id]");
    var id = row.getAttribute("data-job-id");
    confirmAction("Retry job " + id + "?", "It goes back to the queue with a fresh set of attempts.", "Retry").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/jobs/" + id + "/retry").then(function (res) {
        if (!res.ok) { busy(button, false); showBanner("Could not retry job " + id + ": " + res.message); return; }
        replaceContent($('[data-field="status"]', row), badge("queued"));
        button.remove();
        toast("Job " + id + " is queued again.");
      });
    });
  }

  function onRetryAll(button) {
    confirmAction("Retry every failed job?", "They all go back to the queue.", "Retry all").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/jobs/retry").then(function (res) {
        if (!res.ok) { busy(button, false); showBanner("Could not retry the failed jobs: " + res.message); return; }
        toast(res.data.requeued + " jobs queued again.");
        setTimeout(function () { window.location.reload(); }, 800);
      });
    });
  }

  function onCancelRun(button) {
    var id = button.getAttribute("data-run-id");
    confirmAction("Cancel run " + id + "?", "The node running it stops its handler at its next heartbeat; a crawl leaves its unfinished pages queued for the next run.", "Cancel run").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/scheduler/runs/" + id + "/cancel").then(function (res) {
        if (!res.ok) { busy(button, false); showBanner("Could not cancel run " + id + ": " + res.message); return; }
        button.textContent = "Cancelling…";
        toast("Cancel requested for run " + id + ".");
        if (res.data.status !== "running") { window.location.reload(); }
      });
    });
  }

  function onSchedulerPause(button) {
    var reason = window.prompt("Pause the scheduler on every node. No scheduled or chained runs start until you resume; manual runs still do.\n\nReason (shown on every page):", "");
    if (reason === null) { return; }
    busy(button, true);
    api("POST", "/api/v1/scheduler/pause", { reason: reason || null }).then(function (res) {
      if (!res.ok) { busy(button, false); showBanner("Could not pause the scheduler: " + res.message); return; }
      window.location.reload();
    });
  }

  function onSchedulerResume(button) {
    confirmAction("Resume the scheduler?", "What came due during the pause follows each task's misfire policy.", "Resume").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("POST", "/api/v1/scheduler/resume").then(function (res) {
        if (!res.ok) { busy(button, false); showBanner("Could not resume the scheduler: " + res.message); return; }
        window.location.reload();
      });
    });
  }

  /* -- users, API tokens ------------------------------------------------------------------------- */

  function onUserForm(form) {
    clearErrors(form);
    var email = form.elements.email.value.trim();
    var role = form.elements.role.value;
    var org = parseInt(form.elements.org_id.value, 10);
    var body = { email: email, role: role, org_id: isNaN(org) ? null : org, password: form.elements.password.value };
    confirmAction("Add " + (email || "this user") + "?", "As " + (role === "admin" ? "an admin: they can change everything." : "a member of the chosen organisation."), "Add user").then(function (ok) {
      if (!ok) { return; }
      api("POST", "/api/v1/users", body).then(function (res) {
        if (!res.ok) { showErrors(form, res); return; }
        toast(res.data.email + " added.");
        window.location.reload();
      });
    });
  }

  function onResetForm(form) {
    clearErrors(form);
    var select = form.elements.user_id;
    var who = select.options[select.selectedIndex] ? select.options[select.selectedIndex].textContent : "";
    var body = { password: form.elements.password.value, must_change_password: form.elements.must_change_password.checked };
    confirmAction("Reset the password of " + who + "?", "Their sessions end now; they sign in with the new password.", "Reset password").then(function (ok) {
      if (!ok) { return; }
      api("PATCH", "/api/v1/users/" + encodeURIComponent(select.value), body).then(function (res) {
        if (!res.ok) { showErrors(form, res); return; }
        form.elements.password.value = "";
        toast("Password of " + res.data.email + " reset.");
      });
    });
  }

  function onUserActive(button) {
    var row = button.closest("[data-user-id]");
    var email = row.getAttribute("data-user-email");
    var on = button.getAttribute("aria-checked") === "true";
    var verb = on ? "Deactivate" : "Reactivate";
    confirmAction(verb + " " + email + "?", on ? "They are signed out and their API tokens stop working until reactivated." : "They can sign in again, and their tokens work again.", verb).then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("PATCH", "/api/v1/users/" + row.getAttribute("data-user-id"), { is_active: !on }).then(function (res) {
        busy(button, false);
        if (!res.ok) { showBanner("Could not change " + email + ": " + res.message); return; }
        setSwitch(button, res.data.is_active);
        row.classList.toggle("is-disabled", !res.data.is_active);
        toast(email + (res.data.is_active ? " is active." : " is deactivated."));
      });
    });
  }

  function onUserRole(select) {
    var row = select.closest("[data-user-id]");
    var email = row.getAttribute("data-user-email");
    var role = select.value;
    var back = function () { select.value = select.getAttribute("data-current"); };
    confirmAction("Make " + email + " " + (role === "admin" ? "an admin" : "a member") + "?", role === "admin" ? "Admins can change everything, users and tokens included." : "Members see only their organisation's feeds and articles.", "Change role").then(function (ok) {
      if (!ok) { back(); return; }
      api("PATCH", "/api/v1/users/" + row.getAttribute("data-user-id"), { role: role }).then(function (res) {
        if (!res.ok) { back(); showBanner("Could not change the role of " + email + ": " + res.message); return; }
        select.setAttribute("data-current", res.data.role);
        toast(email + " is now " + (res.data.role === "admin" ? "an admin." : "a member."));
      });
    });
  }

  function onTokenForm(form) {
    clearErrors(form);
    var owner = parseInt(form.elements.user_id.value, 10);
    var body = { name: form.elements.name.value.trim(), user_id: isNaN(owner) ? null : owner };
    api("POST", "/api/v1/tokens", body).then(function (res) {
      if (!res.ok) { showErrors(form, res); return; }
      form.reset();
      $("#new-token-value").textContent = res.data.token;
      $("#new-token").hidden = false;
      $("#new-token").scrollIntoView({ block: "nearest" });
      toast("Token " + res.data.name + " created: copy it now.");
      refreshRegions();  // the list gains the new token (never its secret)
    });
  }

  function onRevokeToken(button) {
    var row = button.closest("[data-token-id]");
    var name = row.getAttribute("data-token-name");
    confirmAction("Revoke " + name + "?", "Scripts that use it are refused from now on. This cannot be undone.", "Revoke").then(function (ok) {
      if (!ok) { return; }
      busy(button, true);
      api("DELETE", "/api/v1/tokens/" + row.getAttribute("data-token-id")).then(function (res) {
        if (!res.ok) { busy(button, false); showBanner("Could not revoke " + name + ": " + res.message); return; }
        var state = $('[data-field="state"]', row);
        state.textContent = "";
        var badgeEl = document.createElement("span");
        badgeEl.className = "badge badge-muted";
        badgeEl.textContent = "Revoked";
        state.appendChild(badgeEl);
        row.classList.add("is-disabled");
        button.remove();
        toast(name + " revoked.");
      });
    });
  }

  /* -- wiring ------------------------------------------------------------------------------------ */

  var actions = {
    "toggle": onToggle,
    "run-now": onRunNow,
    "logout": onLogout,
    "dismiss-banner": hideBanner,
    "feed-toggle": onFeedToggle,
    "feed-fetch": onFeedFetch,
    "retry-job": onRetryJob,
    "retry-all": onRetryAll,
    "cron-preset": onCronPreset,
    "delete-task": onDeleteTask,
    "alerts-mute": onAlertsMute,
    "cancel-run": onCancelRun,
    "scheduler-pause": onSchedulerPause,
    "scheduler-resume": onSchedulerResume,
    "user-active": onUserActive,
    "revoke-token": onRevokeToken
  };

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-action]");
    if (!target || target.disabled) { return; }
    var handler = actions[target.getAttribute("data-action")];
    if (handler) { event.preventDefault(); handler(target); }
  });

  var forms = { "password-form": onPasswordForm, "login-form": onLogin, "task-form": onTaskForm, "new-task-form": onNewTaskForm, "feed-form": onFeedForm, "opml-form": onOpmlForm, "user-form": onUserForm, "reset-form": onResetForm, "token-form": onTokenForm };
  document.addEventListener("submit", function (event) {
    var handler = forms[event.target.id];
    if (handler) { event.preventDefault(); handler(event.target); }
  });

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.form) { return; }
    if (field.name === "cron" || (field.name === "timezone" && field.form.elements.cron)) { previewSchedule(field.form); return; }
    var slot = field.name && $('[data-error-for="' + field.name + '"]', field.form);
    if (slot && !slot.hidden) { slot.hidden = true; slot.textContent = ""; field.removeAttribute("aria-invalid"); }
  });

  document.addEventListener("change", function (event) {
    if (event.target.getAttribute("data-action-change") === "feed-priority") { onFeedPriority(event.target); return; }
    if (event.target.getAttribute("data-action-change") === "user-role") { onUserRole(event.target); return; }
    if (event.target.getAttribute("data-action-change") === "submit-form") { event.target.form.submit(); return; }
    if (event.target.id !== "t-handler") { return; }
    var option = event.target.options[event.target.selectedIndex];
    $("#t-handler-help").textContent = option ? option.getAttribute("data-description") || "" : "";
  });

  ["mouseover", "focusin"].forEach(function (kind) {
    document.addEventListener(kind, function (event) {
      var link = event.target.closest && event.target.closest("#duration-chart .bar-link");
      if (link) { showChartTip(link); }
    });
  });
  ["mouseout", "focusout"].forEach(function (kind) {
    document.addEventListener(kind, function (event) {
      if (event.target.closest && event.target.closest("#duration-chart .bar-link")) { hideChartTip(); }
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    localiseTimes(document);
    localiseRunFilters();
    followRun();
    if (csrf) { loop(); }
  });
})();
