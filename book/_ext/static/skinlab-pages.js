/* skinlab book: click (or Enter on) a figure to see it at full size; click or Escape closes it. */
(function () {
  var SELECTOR = ".cell_output img, figure.skinlab-view img";
  function close(box, from) {
    if (box.parentNode) box.parentNode.removeChild(box);
    document.documentElement.style.overflow = "";
    if (from) from.focus();
  }
  function enlarge(img) {
    var box = document.createElement("div");
    box.className = "skinlab-lightbox";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "enlarged figure");
    box.tabIndex = -1;
    var big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    var hint = document.createElement("p");
    hint.textContent = "Full size: scroll to move, click or press Escape to close";
    box.appendChild(hint);
    box.appendChild(big);
    box.addEventListener("click", function () { close(box, img); });
    box.addEventListener("keydown", function (e) { if (e.key === "Escape") close(box, img); });
    document.body.appendChild(box);
    document.documentElement.style.overflow = "hidden";
    box.focus();
  }
  function setup() {
    Array.prototype.forEach.call(document.querySelectorAll(SELECTOR), function (img) {
      if (img.closest(".skinlab-lightbox")) return;
      img.tabIndex = 0;
      img.title = img.title || "click to enlarge";
    });
  }
  document.addEventListener("click", function (e) {
    var img = e.target.closest && e.target.closest(SELECTOR);
    if (img && !img.closest(".skinlab-lightbox")) enlarge(img);
  });
  document.addEventListener("keydown", function (e) {
    var img = e.target.closest && e.target.closest(SELECTOR);
    if (img && e.key === "Enter") enlarge(img);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
