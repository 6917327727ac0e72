// call-insights panel: the transcript follows the player, and the live table follows the
// server's event stream. No inline handlers (the CSP allows scripts from 'self' only).
(function () {
  "use strict";

  function transcript() {
    var audio = document.querySelector("audio[data-transcript]");
    var list = document.getElementById("transcript");
    if (!audio || !list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll("li[data-start]"));
    var current = null;

    list.addEventListener("click", function (event) {
      var li = event.target.closest("li[data-start]");
      if (!li) return;
      audio.currentTime = parseFloat(li.getAttribute("data-start")) || 0;
      highlight();
      var played = audio.play();
      if (played && played.catch) played.catch(function () {});
    });

    function highlight() {
      var t = audio.currentTime;
      var found = null;
      for (var i = 0; i < items.length; i++) {
        var start = parseFloat(items[i].getAttribute("data-start"));
        var end = parseFloat(items[i].getAttribute("data-end"));
        if (t >= start && t < end) { found = items[i]; break; }
      }
      if (found === current) return;
      if (current) current.classList.remove("current");
      current = found;
      if (current) {
        current.classList.add("current");
        var top = current.offsetTop - list.offsetTop;
        if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - current.clientHeight) {
          list.scrollTop = top - 40;
        }
      }
    }
    audio.addEventListener("timeupdate", highlight);
    audio.addEventListener("seeked", highlight);
  }

  function live() {
    var table = document.getElementById("live");
    var status = document.getElementById("live-status");
    if (!table || !window.EventSource) return;
    var body = table.querySelector("tbody");
    var source = new EventSource(table.getAttribute("data-source"));
    source.addEventListener("calls", function (event) {
      // Rendered and escaped by the server.
      body.innerHTML = event.data;
    });
    source.addEventListener("open", function () {
      status.textContent = status.getAttribute("data-ok");
      status.className = "badge ok pulse";
    });
    source.addEventListener("error", function () {
      status.textContent = status.getAttribute("data-retry");
      status.className = "badge busy";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    transcript();
    live();
  });
})();
