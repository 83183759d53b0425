"""The web page of an image server (``GET /``): a person picks or drops a photo, the page posts it
to ``/v1/predict`` as a multipart upload, and shows the class, every class's probability, the
model version and the prediction id, or the server's reason for refusing the file.

One self-contained page (no script or style from elsewhere: a server on a factory network may
have no internet), written once with the project's name and classes.
"""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  #drop { display: block; border: 2px dashed #888; border-radius: 8px; padding: 1.5rem; text-align: center;
          cursor: pointer; }
  #drop.over { background: #eef4ff; border-color: #36c; }
  #preview { min-width: 8rem; max-width: 100%; max-height: 16rem; margin-top: 1rem; display: none;
             image-rendering: pixelated; }
  #verdict { font-size: 2rem; font-weight: bold; margin: 1rem 0 0.25rem; }
  .bar { display: flex; align-items: center; gap: 0.5rem; margin: 0.15rem 0; }
  .bar span:first-child { width: 6rem; text-align: right; }
  .bar div { height: 0.9rem; background: #36c; }
  #error { color: #b00; white-space: pre-wrap; }
  #meta { color: #666; font-size: 0.85rem; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p>Classes: __CLASSES__. Upload a photo to get its verdict.</p>
<form id="form">
  <label id="drop">Drop a photo here, or click to choose one
    <input id="file" name="image" type="file" accept="image/*" hidden>
  </label>
</form>
<img id="preview" alt="the photo sent">
<p id="status" role="status"></p>
<div id="result" hidden>
  <div id="verdict"></div>
  <div id="probabilities"></div>
  <p id="meta"></p>
</div>
<p id="error" role="alert"></p>
<script>
const input = document.getElementById("file"), drop = document.getElementById("drop");
const show = (id, text) => { document.getElementById(id).textContent = text; };
async function send(file) {
  show("error", ""); document.getElementById("result").hidden = true;
  const preview = document.getElementById("preview");
  preview.src = URL.createObjectURL(file); preview.style.display = "block";
  show("status", "Sending " + file.name + "...");
  const body = new FormData(); body.append("image", file, file.name);
  let answer, payload;
  try {
    answer = await fetch("__PREDICT__", { method: "POST", body });
    payload = await answer.json();
  } catch (error) { show("status", ""); show("error", "The server did not answer: " + error); return; }
  show("status", "");
  if (!answer.ok) { show("error", "Refused (" + answer.status + "): " + payload.detail); return; }
  const prediction = payload.predictions[0];
  show("verdict", prediction.label);
  const bars = document.getElementById("probabilities"); bars.replaceChildren();
  for (const [label, p] of Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div"); row.className = "bar";
    const name = document.createElement("span"); name.textContent = label;
    const bar = document.createElement("div"); bar.style.width = (p * 20) + "rem";
    const value = document.createElement("span"); value.textContent = (p * 100).toFixed(1) + "%";
    row.append(name, bar, value); bars.append(row);
  }
  show("meta", `model ${payload.model} version ${payload.model_version} - prediction ${prediction.prediction_id}`);
  document.getElementById("result").hidden = false;
}
input.addEventListener("change", () => { if (input.files.length) send(input.files[0]); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) send(e.dataTransfer.files[0]);
});
</script>
</body>
</html>
"""


def upload_page(title: str, classes: list[str], predict_path: str = "/v1/predict") -> str:
    """The page for a project named ``title`` telling apart ``classes``."""
    return (
        PAGE.replace("__TITLE__", html.escape(title))
        .replace("__CLASSES__", html.escape(", ".join(classes)))
        .replace("__PREDICT__", json.dumps(predict_path)[1:-1])
    )
