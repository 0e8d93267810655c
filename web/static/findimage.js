// findimage's search page: results without reloading, more as you scroll, a photo dropped,
// pasted or chosen, and a picture opened large. Plain JavaScript, no build step; the page
// also works without it (the form is an ordinary GET).
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const answer = document.getElementById("answer");
const form = document.getElementById("search");
const viewer = document.getElementById("viewer");
const viewerBody = document.getElementById("viewer-body");
let photo = null; // the photo of the current search, kept to ask for its next pages
let loading = false;
// Each new search gets the next number; an answer that arrives for an older one (a next page
// still in flight when the person searched again) is dropped instead of mixed in.
let generation = 0;

function formFields() {
  const fields = new URLSearchParams(new FormData(form));
  for (const [name, value] of [...fields]) if (!value.trim()) fields.delete(name);
  return fields;
}

async function show(response, append, asked) {
  const html = await response.text();
  if (asked !== generation) return;
  if (!append) {
    answer.innerHTML = html;
    if (photo) showOwnCopy();
  } else {
    const grid = document.getElementById("grid");
    const more = grid.querySelector(".more");
    if (more) more.remove();
    if (!response.ok) {
      grid.insertAdjacentHTML("afterend", html);
      return;
    }
    grid.insertAdjacentHTML("beforeend", html);
  }
  watchForMore();
}

function showOwnCopy() {
  // The photo searched with comes first, so the person sees what the results are like.
  const grid = document.getElementById("grid");
  if (!grid) return;
  const card = document.createElement("li");
  card.className = "card own";
  const image = document.createElement("img");
  image.src = URL.createObjectURL(photo);
  image.alt = "Your photo";
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = "Your photo";
  card.append(image, meta);
  grid.prepend(card);
}

async function searchText(push) {
  photo = null;
  const fields = formFields();
  if (!fields.get("q")) return;
  if (push) history.pushState(null, "", "/?" + fields.toString());
  const asked = ++generation;
  loading = true;
  try {
    await show(await fetch("/results?" + fields.toString()), false, asked);
  } finally {
    loading = false;
  }
}

async function searchPhoto(file, offset) {
  photo = file;
  const asked = offset > 0 ? generation : ++generation;
  const body = new FormData(form);
  body.append("photo", file);
  body.set("offset", String(offset));
  loading = true;
  try {
    const response = await fetch("/results/photo", {
      method: "POST",
      body,
      headers: { "X-CSRF-Token": csrfToken },
    });
    await show(response, offset > 0, asked);
  } finally {
    loading = false;
  }
}

let observer = null;
function watchForMore() {
  if (observer) observer.disconnect();
  const more = document.querySelector("#grid .more");
  if (!more) return;
  observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((entry) => entry.isIntersecting) || loading) return;
    observer.disconnect();
    const following = more.dataset.following;
    if (photo) {
      await searchPhoto(photo, Number(following));
    } else {
      const asked = generation;
      loading = true;
      try {
        await show(await fetch(following), true, asked);
      } finally {
        loading = false;
      }
    }
  }, { rootMargin: "600px" });
  observer.observe(more);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  searchText(true);
});
window.addEventListener("popstate", () => location.reload());

// A photo: dropped anywhere on the page, pasted, or chosen with the file picker.
const drop = document.getElementById("drop");
const picker = document.getElementById("photo");
picker.addEventListener("change", () => {
  if (picker.files.length) searchPhoto(picker.files[0], 0);
  picker.value = "";
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
document.addEventListener("dragleave", () => drop.classList.remove("over"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = [...(event.dataTransfer?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) searchPhoto(file, 0);
});
document.addEventListener("paste", (event) => {
  const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
  if (item) searchPhoto(item.getAsFile(), 0);
});

// A result opened large, with its path, date, place and More like this.
answer.addEventListener("click", async (event) => {
  const button = event.target.closest("button.open");
  if (!button) return;
  const response = await fetch("/details/" + encodeURIComponent(button.dataset.id));
  viewerBody.innerHTML = await response.text();
  viewer.showModal();
});
viewerBody.addEventListener("click", (event) => {
  const like = event.target.closest("a.like");
  if (!like) return;
  event.preventDefault();
  viewer.close();
  const q = new URL(like.href).searchParams.get("q");
  form.elements.q.value = q;
  searchText(true);
});

watchForMore();
