// huimages web interface: drag and drop uploads with a progress bar per file, copy buttons, the focus
// picker with its crop previews, and placeholder colours behind the grid's thumbnails.
// The pages work without it: the upload form posts, the copy fields can be selected by hand.
"use strict";

function csrfToken() {
  const field = document.querySelector("input[name=csrf]");
  return field ? field.value : "";
}

function uploadOne(file, title, list) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", "Upload of " + file.name);
  item.append(name, bar);
  list.append(item);

  const form = new FormData();
  form.append("file", file, file.name);
  if (title) form.append("title", title);
  const request = new XMLHttpRequest();
  request.open("POST", "/ui/upload");
  request.setRequestHeader("Accept", "application/json");
  request.setRequestHeader("X-CSRF-Token", csrfToken());
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
  });
  request.addEventListener("load", () => {
    let answer = {};
    try { answer = JSON.parse(request.responseText); } catch (e) { answer = {}; }
    const result = (answer.results || [])[0];
    if (result && !result.error) {
      bar.value = 100;
      showStored(item, result);
    } else {
      showFailed(item, (result && result.error) || answer.error || (file.name + ": the server answered " + request.status));
    }
  });
  request.addEventListener("error", () => showFailed(item, file.name + ": the upload did not reach the server; try again"));
  request.send(form);
}

function showStored(item, result) {
  item.className = "stored";
  item.replaceChildren();
  const link = document.createElement("a");
  link.href = result.page;
  const image = document.createElement("img");
  image.src = result.thumb;
  image.alt = result.alt;
  image.width = result.thumb_width;
  image.height = result.thumb_height;
  link.append(image);
  const text = document.createElement("span");
  text.append(result.file + ": stored as ");
  const code = document.createElement("a");
  code.href = result.page;
  code.className = "image-id";
  code.textContent = result.id;
  text.append(code);
  if (!result.created) text.append(" (already stored; title added)");
  item.append(link, text);
}

function showFailed(item, message) {
  item.className = "failed";
  item.replaceChildren();
  const text = document.createElement("span");
  text.className = "error";
  text.textContent = message;
  item.append(text);
}

function setUpUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const list = document.getElementById("results");
  const send = (files) => {
    const title = form.elements.title.value.trim();
    for (const file of files) uploadOne(file, title, list);
    input.value = "";
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(Array.from(input.files));
  });
  input.addEventListener("change", () => send(Array.from(input.files)));
  input.required = false;
  ["dragenter", "dragover"].forEach((kind) => drop.addEventListener(kind, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((kind) => drop.addEventListener(kind, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    send(Array.from(event.dataTransfer.files));
  });
}

function setUpCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const text = button.dataset.copy;
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        const field = button.parentElement.querySelector("input");
        field.select();
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
}

// Where a crop of boxW x boxH is cut from a picture of imageW x imageH around the focus (fx, fy):
// the same placement as huimages.core.sizes.crop_box (centred on the focus, kept inside the picture).
function cropPlacement(imageW, imageH, boxW, boxH, fx, fy) {
  const scale = Math.max(boxW / imageW, boxH / imageH);
  const width = imageW * scale, height = imageH * scale;
  const left = Math.min(Math.max(fx * width - boxW / 2, 0), width - boxW);
  const top = Math.min(Math.max(fy * height - boxH / 2, 0), height - boxH);
  return { width, height, left, top };
}

function setUpFocus() {
  const image = document.getElementById("focus-image");
  if (!image) return;
  const mark = document.getElementById("focus-mark");
  const inputX = document.getElementById("focus-x");
  const inputY = document.getElementById("focus-y");
  const crops = Array.from(document.querySelectorAll(".crop"));
  const show = (fx, fy) => {
    mark.style.display = "block";
    mark.style.left = (fx * image.clientWidth) + "px";
    mark.style.top = (fy * image.clientHeight) + "px";
    for (const crop of crops) {
      const boxW = Number(crop.dataset.width), boxH = Number(crop.dataset.height);
      const place = cropPlacement(image.naturalWidth, image.naturalHeight, boxW, boxH, fx, fy);
      crop.style.width = boxW + "px";
      crop.style.height = boxH + "px";
      crop.style.backgroundImage = "url(" + JSON.stringify(image.currentSrc || image.src) + ")";
      crop.style.backgroundSize = place.width + "px " + place.height + "px";
      crop.style.backgroundPosition = (-place.left) + "px " + (-place.top) + "px";
    }
  };
  const current = () => show(Number(inputX.value), Number(inputY.value));
  image.addEventListener("click", (event) => {
    const box = image.getBoundingClientRect();
    const fx = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const fy = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
    inputX.value = fx.toFixed(3);
    inputY.value = fy.toFixed(3);
    show(fx, fy);
  });
  inputX.addEventListener("input", current);
  inputY.addEventListener("input", current);
  if (image.complete && image.naturalWidth) current();
  else image.addEventListener("load", current);
  window.addEventListener("resize", current);
}

function setUpPlaceholders() {
  // The average colour stored at upload stands in for a thumbnail until it loads (set here: the
  // page's Content-Security-Policy allows no inline styles).
  document.querySelectorAll("img[data-placeholder]").forEach((image) => {
    if (/^#[0-9a-f]{6}$/.test(image.dataset.placeholder)) image.style.backgroundColor = image.dataset.placeholder;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpUpload();
  setUpCopyButtons();
  setUpPlaceholders();
  setUpFocus();
});
