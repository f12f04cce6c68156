/* pbxgate Live page: the calls in progress and the notifications just queued, kept current
   by the server-sent events of /api/live/events (snapshot, call, gone, notification,
   sources). Without JavaScript the page reloads itself (its <noscript> refresh).
   Everything shown is set as text, never as HTML: a caller's name comes from outside. */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !("EventSource" in window)) {
    return;
  }
  var words = JSON.parse(root.getAttribute("data-words"));
  var body = document.getElementById("live-calls-body");
  var noCalls = document.getElementById("live-no-calls");
  var notes = document.getElementById("live-notifications");
  var noNotes = document.getElementById("live-no-notes");
  var status = document.getElementById("live-status");
  var announce = document.getElementById("live-announce");
  var sources = document.getElementById("live-sources");
  var KEEP = 30;
  var OFFLINE_RETRY_MS = 5000;
  var source = null;

  function word(key, fallback) {
    return Object.prototype.hasOwnProperty.call(words, key) ? words[key] : fallback;
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function callRow(call) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-call", call.key);
    tr.setAttribute("data-state", call.state);
    tr.setAttribute("data-source", call.source);
    tr.setAttribute("data-caller", call.caller);
    tr.setAttribute("data-called", call.called);
    var who = cell(call.caller);
    if (call.caller_name) {
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = call.caller_name;
      who.appendChild(document.createTextNode(" "));
      who.appendChild(name);
    }
    tr.appendChild(who);
    tr.appendChild(cell(call.called));
    var state = word(call.state, call.state);
    tr.appendChild(cell(call.answered_by ? state + " · " + call.answered_by : state));
    var since = document.createElement("td");
    var time = document.createElement("time");
    time.textContent = call.since_text;
    since.appendChild(time);
    tr.appendChild(since);
    tr.setAttribute("data-since", String(call.since));
    return tr;
  }

  function findRow(key) {
    for (var i = 0; i < body.rows.length; i++) {
      if (body.rows[i].getAttribute("data-call") === key) {
        return body.rows[i];
      }
    }
    return null;
  }

  function refreshEmpty() {
    noCalls.hidden = body.rows.length > 0;
    noNotes.hidden = notes.children.length > 0;
  }

  function say(text) {
    announce.textContent = "";
    window.setTimeout(function () { announce.textContent = text; }, 50);
  }

  function upsertCall(call) {
    var old = findRow(call.key);
    var tr = callRow(call);
    if (old) {
      body.replaceChild(tr, old);
    } else {
      body.appendChild(tr);
      say(word("new_call", "").replace("{caller}", call.caller || "?")
        .replace("{called}", call.called || "?"));
    }
    refreshEmpty();
  }

  function removeCall(key) {
    var old = findRow(key);
    if (old) {
      body.removeChild(old);
    }
    refreshEmpty();
  }

  function noteItem(n) {
    var li = document.createElement("li");
    li.setAttribute("data-delivery", String(n.id));
    li.setAttribute("data-channel", n.channel);
    li.setAttribute("data-kind", n.kind);
    li.setAttribute("data-state", n.state);
    var time = document.createElement("time");
    time.textContent = n.at_text;
    li.appendChild(time);
    var kind = word("kind_" + n.kind, n.kind);
    li.appendChild(document.createTextNode(" " + kind + " · " + n.channel + " → " + n.recipient + " "));
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = n.state;
    li.appendChild(state);
    return li;
  }

  function addNote(n) {
    notes.insertBefore(noteItem(n), notes.firstChild);
    while (notes.children.length > KEEP) {
      notes.removeChild(notes.lastChild);
    }
    refreshEmpty();
  }

  function showSources(found) {
    sources.textContent = "";
    Object.keys(found).sort().forEach(function (name) {
      var parts = name.split(":");
      var text = word(parts[0] + "_" + found[name], "");
      if (!text) {
        return;
      }
      var li = document.createElement("li");
      li.setAttribute("data-source", name);
      li.setAttribute("data-state", found[name]);
      li.textContent = text.replace("{pbx}", parts[1] || "");
      sources.appendChild(li);
    });
    if (root.getAttribute("data-ami") === "off") {
      var off = document.createElement("li");
      off.setAttribute("data-source", "ami");
      off.setAttribute("data-state", "off");
      off.textContent = word("no_ami", "");
      sources.appendChild(off);
    }
  }

  function snapshot(data) {
    body.textContent = "";
    data.calls.forEach(function (call) { body.appendChild(callRow(call)); });
    notes.textContent = "";
    data.notifications.forEach(function (n) { notes.appendChild(noteItem(n)); });
    showSources(data.sources);
    refreshEmpty();
  }

  function setStatus(state) {
    status.setAttribute("data-state", state);
    status.textContent = word(state, state);
  }

  function listen(name, handle) {
    source.addEventListener(name, function (event) {
      handle(JSON.parse(event.data));
    });
  }

  function connect() {
    source = new EventSource(root.getAttribute("data-events"));
    listen("snapshot", function (data) {
      snapshot(data);
      setStatus("on");
    });
    listen("call", upsertCall);
    listen("gone", function (data) { removeCall(data.key); });
    listen("notification", addNote);
    listen("sources", showSources);
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // refused (logged out, too many pages) or the server is gone: try again later
        source.close();
        setStatus("offline");
        window.setTimeout(connect, OFFLINE_RETRY_MS);
      } else {
        setStatus("reconnecting");
      }
    };
  }

  connect();
}());
