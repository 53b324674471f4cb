// Counts the open SLA clocks down between two refreshes from the server.
(function () {
  function duration(seconds) {
    var s = Math.round(Math.abs(seconds));
    var sign = seconds < 0 && s ? "-" : "";
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    var pad = function (n) { return n < 10 ? "0" + n : "" + n; };
    if (d) return sign + d + "d " + h + "h";
    if (h) return sign + h + "h " + pad(m) + "m";
    if (m) return sign + m + "m " + pad(r) + "s";
    return sign + r + "s";
  }
  setInterval(function () {
    document.querySelectorAll(".countdown[data-seconds-left]").forEach(function (el) {
      var left = parseFloat(el.getAttribute("data-seconds-left")) - 1;
      if (isNaN(left)) return;
      el.setAttribute("data-seconds-left", String(left));
      el.textContent = duration(left);
    });
  }, 1000);
})();
