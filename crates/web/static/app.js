// Progressive enhancement only: every page works without this file.
// 1. The header search box offers results while typing (the search API).
// 2. A record picker (<select data-lookup="account">) becomes a type-ahead over the search
//    API, so an account is found among any number of them, not only the first 200 listed;
//    <select data-lookup="user"> (a company with 200 users or more) over the users API.
(function () {
  "use strict";
  // Where each kind of search hit opens.
  var PAGES = { lead: "/leads/", opportunity: "/opportunities/" };
  function debounce(fn, ms) {
    var t;
    return function () {
      var args = arguments, self = this;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }
  function lookup(q, kind, limit) {
    if (kind === "user") {
      // Colleagues by name or email (active users), for owner and user pickers.
      return fetch("/api/v1/users?active=true&limit=" + limit + "&q=" + encodeURIComponent(q), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (d) {
          return (d.items || []).map(function (u) { return { id: u.id, name: u.name, detail: u.email }; });
        })
        .catch(function () { return []; });
    }
    return fetch("/api/v1/search?limit=" + limit + "&q=" + encodeURIComponent(q), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (d) {
        return (d.items || []).filter(function (h) { return !kind || h.kind === kind; });
      })
      .catch(function () { return []; });
  }
  function list(anchor) {
    var ul = document.createElement("ul");
    ul.className = "suggest";
    ul.setAttribute("role", "listbox");
    ul.hidden = true;
    anchor.parentNode.insertBefore(ul, anchor.nextSibling);
    return ul;
  }
  function text(el, s) { el.appendChild(document.createTextNode(s || "")); return el; }

  // 1. Header search.
  var box = document.querySelector("form.search input[name=q]");
  if (box) {
    box.setAttribute("autocomplete", "off");
    var ul = list(box);
    box.addEventListener("input", debounce(function () {
      var q = box.value.trim();
      if (!q) { ul.hidden = true; return; }
      lookup(q, null, 6).then(function (hits) {
        ul.innerHTML = "";
        hits.forEach(function (h) {
          var li = document.createElement("li");
          var a = document.createElement("a");
          a.href = (PAGES[h.kind] || "/customers/" + h.kind + "s/") + h.id;
          text(a, h.name);
          var small = document.createElement("small");
          text(small, " " + [h.detail, h.phone].filter(Boolean).join(" · "));
          a.appendChild(small);
          li.appendChild(a);
          ul.appendChild(li);
        });
        ul.hidden = hits.length === 0;
      });
    }, 150));
    document.addEventListener("click", function (e) { if (e.target !== box) ul.hidden = true; });
  }

  // 2. Record pickers.
  Array.prototype.forEach.call(document.querySelectorAll("select[data-lookup]"), function (sel) {
    var kind = sel.getAttribute("data-lookup");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = sel.name;
    hidden.value = sel.value;
    var input = document.createElement("input");
    input.type = "search";
    input.autocomplete = "off";
    input.placeholder = sel.getAttribute("data-placeholder") || "";
    input.className = "lookup";
    input.value = sel.value ? sel.options[sel.selectedIndex].text : "";
    if (sel.required) input.required = true;
    sel.parentNode.insertBefore(hidden, sel);
    sel.parentNode.insertBefore(input, sel);
    sel.parentNode.removeChild(sel);
    var ul = list(input);
    input.addEventListener("input", debounce(function () {
      var q = input.value.trim();
      hidden.value = "";
      if (!q) { ul.hidden = true; return; }
      lookup(q, kind, 20).then(function (hits) {
        ul.innerHTML = "";
        hits.forEach(function (h) {
          var li = document.createElement("li");
          var b = document.createElement("button");
          b.type = "button";
          text(b, h.name);
          if (h.detail) { var s = document.createElement("small"); text(s, " " + h.detail); b.appendChild(s); }
          b.addEventListener("click", function () {
            hidden.value = h.id;
            input.value = h.name;
            ul.hidden = true;
          });
          li.appendChild(b);
          ul.appendChild(li);
        });
        ul.hidden = hits.length === 0;
      });
    }, 150));
  });

  // 3. The deal board: a card dragged onto another column is moved there by its own stage
  //    picker's form (the same request a tap on "Move" sends; a refusal shows as it would).
  Array.prototype.forEach.call(document.querySelectorAll("#board article.deal"), function (card) {
    if (!card.querySelector("form.move")) return;
    card.draggable = true;
    card.addEventListener("dragstart", function (e) {
      e.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
      card.classList.add("dragging");
    });
    card.addEventListener("dragend", function () { card.classList.remove("dragging"); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("#board .column"), function (col) {
    col.addEventListener("dragover", function (e) { e.preventDefault(); col.classList.add("drop"); });
    col.addEventListener("dragleave", function () { col.classList.remove("drop"); });
    col.addEventListener("drop", function (e) {
      e.preventDefault();
      col.classList.remove("drop");
      var id = e.dataTransfer.getData("text/plain");
      var card = document.querySelector("#board article.deal[data-id='" + id + "']");
      var form = card && card.querySelector("form.move");
      if (!form || card.parentNode === col) return;
      form.querySelector("select[name=stage_id]").value = col.getAttribute("data-stage");
      form.submit();
    });
  });

  // 4. The home page's dashboard: its tiles are fetched after the page shows.
  Array.prototype.forEach.call(document.querySelectorAll("[data-panel]"), function (box) {
    fetch(box.getAttribute("data-panel"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var loading = box.querySelector("[data-loading]");
        if (loading) loading.remove();
        box.insertAdjacentHTML("beforeend", html);
      })
      .catch(function () {});
  });

  // 5. A dashboard's filter bar: days typed in mean "these days" (without script, the
  //    period's own choice says so).
  var filters = document.getElementById("dashboard-filters");
  if (filters) {
    Array.prototype.forEach.call(filters.querySelectorAll("input[type=date]"), function (input) {
      input.addEventListener("change", function () { filters.querySelector("select[name=period]").value = "custom"; });
    });
  }
})();
