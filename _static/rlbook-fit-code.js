// Code cells hold lines of up to 88 characters (tests/test_notebooks.py). Where a block is
// narrower than its longest line, shrink that block's font until the line fits (not below
// 10 px), so that no code scrolls sideways; blocks that fit keep the theme's size.
(function () {
  function fit() {
    document.querySelectorAll("div.cell_input pre").forEach(function (pre) {
      pre.style.fontSize = "";
      if (!pre.offsetParent || pre.scrollWidth <= pre.clientWidth + 1) return;
      var size = parseFloat(getComputedStyle(pre).fontSize);
      var scaled = Math.floor(size * (pre.clientWidth / pre.scrollWidth) * 10) / 10;
      pre.style.fontSize = Math.max(10, scaled - 0.1) + "px";
    });
  }
  document.addEventListener("DOMContentLoaded", fit);
  window.addEventListener("resize", fit);
  // a hidden cell's code is measured when the reader opens it
  document.addEventListener("toggle", fit, true);
})();
