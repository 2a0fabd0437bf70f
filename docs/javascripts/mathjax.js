// MathJax 3 for pymdownx.arithmatex (generic mode), the mkdocs-material way: typeset only the
// elements arithmatex marks (class "arithmatex"), with its \( \) and \[ \] delimiters. The MathJax
// script itself is served from the site (assets/mathjax/, added by docs/hooks/mathjax_assets.py).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
    enableMenu: false,
  },
};

// Typeset again whenever mkdocs-material swaps the page content (instant navigation); on the
// first load MathJax typesets by itself once its startup finishes.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    const mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise || !mj.typesetPromise) {
      return;
    }
    mj.startup.promise.then(() => {
      mj.typesetClear();
      mj.texReset();
      return mj.typesetPromise();
    });
  });
}
