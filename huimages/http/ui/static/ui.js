// huimages web interface: drag and drop uploads with a progress bar per file, and copy buttons.
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

document.addEventListener("DOMContentLoaded", () => {
  setUpUpload();
  setUpCopyButtons();
});
