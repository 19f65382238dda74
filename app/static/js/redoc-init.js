// Starts ReDoc; an external file because the CSP allows no inline script.
"use strict";
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, { disableSearch: true }, root);
})();
