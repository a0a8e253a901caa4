"""The page `GET /` serves: pick or drop an image, see the top-5 as bars and the Grad-CAM heat map. No external
assets (the server may have no network): one HTML document with its own CSS and script."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>inceptorch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; max-width: 760px; margin: 2em auto; padding: 0 1em; color: #222; }
#drop { border: 2px dashed #999; border-radius: 8px; padding: 2em; text-align: center; color: #555; }
#drop.over { border-color: #2a6ad8; background: #eef4ff; }
.row { display: flex; align-items: center; margin: 4px 0; }
.name { width: 12em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar { height: 18px; background: #2a6ad8; border-radius: 3px; margin: 0 8px; }
.pics img { width: 46%; max-width: 320px; margin: 1em 2% 0 0; border-radius: 4px; }
#error { color: #b00020; } #meta { color: #666; font-size: 0.9em; }
</style></head><body>
<h1>inceptorch</h1><p id="meta">loading the model...</p>
<div id="drop">Drop an image here, or <label><u>choose one</u><input id="file" type="file" accept="image/*"
 hidden></label></div>
<p id="error"></p><div id="result"></div><div class="pics" id="pics"></div>
<script>
const meta = document.getElementById("meta"), drop = document.getElementById("drop");
fetch("/model").then(r => r.json()).then(m => {
  meta.textContent = `${m.model} (version ${m.version}), ${m.num_classes} classes, ${m.input_size} px`;
}).catch(() => { meta.textContent = "the model is not loaded yet"; });
function show(file) {
  document.getElementById("error").textContent = "";
  document.getElementById("result").textContent = "classifying...";
  document.getElementById("pics").innerHTML = "";
  fetch("/predict?topk=5&explain=1", {method: "POST", body: file,
        headers: {"Content-Type": file.type || "application/octet-stream"}})
    .then(r => r.json().then(body => ({ok: r.ok, body})))
    .then(({ok, body}) => {
      const result = document.getElementById("result");
      result.innerHTML = "";
      if (!ok) { document.getElementById("error").textContent = body.error; return; }
      for (const p of body.predictions) {
        const row = document.createElement("div"); row.className = "row prediction";
        const name = document.createElement("span"); name.className = "name"; name.textContent = p.class;
        const bar = document.createElement("span"); bar.className = "bar";
        bar.style.width = Math.max(2, 300 * p.probability) + "px";
        const pct = document.createElement("span"); pct.className = "probability";
        pct.textContent = (100 * p.probability).toFixed(2) + "%";
        row.append(name, bar, pct); result.append(row);
      }
      const pics = document.getElementById("pics");
      const img = document.createElement("img"); img.src = URL.createObjectURL(file); img.alt = "your image";
      pics.append(img);
      if (body.heat_map) {
        const heat = document.createElement("img"); heat.src = body.heat_map; heat.alt = "heat map"; heat.id = "heat";
        pics.append(heat);
      }
    })
    .catch(e => { document.getElementById("error").textContent = String(e); });
}
document.getElementById("file").addEventListener("change", e => { if (e.target.files[0]) show(e.target.files[0]); });
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) show(e.dataTransfer.files[0]);
});
</script></body></html>
"""
