// The Calls page: a button on each row opens the call's legs under it (GET /api/calls/{id})
// as a timeline of bars with the same told in words. Without this script each row links to
// the call's own page (/calls/{id}), which shows the same.
(function () {
  "use strict";
  var table = document.getElementById("calls-list");
  if (!table || !window.fetch) {
    return;
  }
  var words = table.dataset;

  Array.prototype.forEach.call(table.querySelectorAll("button.legs-toggle"), function (button) {
    var link = button.parentNode.querySelector("a.legs-link");
    if (link) {
      link.hidden = true;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      toggle(button);
    });
  });

  function toggle(button) {
    var row = document.getElementById(button.getAttribute("aria-controls"));
    var open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", open ? "false" : "true");
    button.textContent = open ? "\u25B8" : "\u25BE";
    row.hidden = open;
    if (open || row.dataset.loaded) {
      return;
    }
    var cell = row.firstElementChild;
    cell.setAttribute("aria-busy", "true");
    cell.textContent = words.loading;
    fetch(button.dataset.api, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (answer) {
        return answer.json().then(function (body) {
          if (!answer.ok) {
            throw new Error(body.error || answer.status);
          }
          return body;
        });
      })
      .then(function (detail) {
        draw(cell, detail.timeline);
        row.dataset.loaded = "1";
      })
      .catch(function (error) {
        cell.textContent = words.failed + ": " + error.message;
      })
      .then(function () {
        cell.removeAttribute("aria-busy");
      });
  }

  function draw(cell, timeline) {
    var total = Math.max(timeline.duration, 1);
    var list = element("ol", "timeline");
    timeline.items.forEach(function (item) {
      var li = element("li", "tl-item tl-" + item.kind);
      li.appendChild(element("span", "tl-who", item.who));
      var track = element("span", "tl-track");
      track.setAttribute("aria-hidden", "true");
      if (item.ring) {
        track.appendChild(bar("tl-ring", item.at, item.ring, total, words.ring));
      }
      if (item.talk) {
        track.appendChild(bar("tl-talk", item.at + item.ring, item.talk, total, words.talk));
      }
      li.appendChild(track);
      li.appendChild(element("span", "tl-text", item.text));
      list.appendChild(li);
    });
    cell.textContent = "";
    cell.appendChild(list);
    cell.appendChild(element("p", "tl-end", timeline.end));
  }

  function bar(kind, from, length, total, title) {
    var span = element("span", kind);
    span.style.left = Math.min(100, (from * 100) / total) + "%";
    span.style.width = Math.min(100, (length * 100) / total) + "%";
    span.title = title;
    return span;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }
})();
