// Draws every <div class="chart" data-option='…'> of a page with ECharts (echarts-5.6.0.min.js, loaded
// before this file). The option comes from gateway/console/charts.py; here only what JSON cannot carry:
// the formatting of values on the axis and in the tooltip (counts, percentages, money in major units).
(function () {
  "use strict";
  function formatter(option) {
    var lang = document.documentElement.lang || "en";
    var count = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    if (option.unit === "percent") {
      return function (v) { return v === null || v === undefined || v === "-" ? "-" : v.toFixed(1) + "%"; };
    }
    if (option.unit === "money") {
      var money = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
      return function (v) { return v === null || v === undefined ? "-" : (option.currency || "") + " " + money.format(v); };
    }
    return function (v) { return v === null || v === undefined ? "-" : count.format(v); };
  }
  function draw(element) {
    var option = JSON.parse(element.getAttribute("data-option"));
    var format = formatter(option);
    option.tooltip.valueFormatter = format;
    option.yAxis.axisLabel = { formatter: option.unit === "money" ? function (v) { return format(v).trim(); } : format };
    delete option.unit;
    delete option.currency;
    var chart = echarts.init(element, null, { renderer: "svg" });
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  }
  document.querySelectorAll("div.chart[data-option]").forEach(draw);
})();
