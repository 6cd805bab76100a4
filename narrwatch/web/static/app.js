// Progressive enhancement: every page works without this file. It adds keyboard shortcuts and
// in-place verdicts to the review queue, and live scoring to "try a text". Served from the app's own
// origin (the Content-Security-Policy allows no inline or remote script).
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";

  async function post(url, data, accept) {
    const body = new URLSearchParams();
    for (const [key, value] of data) body.append(key, value);
    const response = await fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": accept, "X-Fragment": "1" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return accept === "application/json" ? response.json() : response.text();
  }

  // --- review queue ---------------------------------------------------------------------------
  const queue = document.querySelector(".queue");
  if (queue) {
    const status = document.getElementById("status");
    const undoStack = [];
    const items = () => Array.from(queue.querySelectorAll(".review-item"));
    const open = () => items().filter((item) => !item.classList.contains("done"));
    let current = null;

    function focusItem(item) {
      if (!item) return;
      if (current) current.classList.remove("current");
      current = item;
      item.classList.add("current");
      item.focus();
      item.scrollIntoView({ block: "nearest" });
    }
    function move(step) {
      const all = items();
      const index = current ? all.indexOf(current) : -1;
      focusItem(all[Math.min(all.length - 1, Math.max(0, index + step))]);
    }
    function nextOpen() {
      const all = open();
      const after = all.find((item) => current && (current.compareDocumentPosition(item) & Node.DOCUMENT_POSITION_FOLLOWING));
      focusItem(after || all[0]);
    }

    async function decide(item, verdict) {
      if (!item || item.classList.contains("done")) return;
      const ids = [["verdict", verdict], ["match_id", item.dataset.match]];
      try {
        const result = await post("/review/verdict", ids, "application/json");
        item.classList.add("done", verdict);
        item.dataset.verdict = verdict;
        undoStack.push({ item: item, events: result.undo });
        status.textContent = (verdict === "confirm" ? "Confirmed" : "Rejected") + " match " + item.dataset.match + " · u to undo";
        nextOpen();
      } catch (error) {
        status.textContent = "Not recorded: " + error.message;
      }
    }

    async function undo() {
      const last = undoStack.pop();
      if (!last) return;
      const data = last.events.map((id) => ["event_id", String(id)]);
      try {
        await post("/review/undo", data, "application/json");
        last.item.classList.remove("done", "confirm", "reject");
        delete last.item.dataset.verdict;
        status.textContent = "Undone: match " + last.item.dataset.match + " is back in the queue";
        focusItem(last.item);
      } catch (error) {
        status.textContent = "Undo failed: " + error.message;
      }
    }

    queue.addEventListener("submit", (event) => {
      const form = event.target;
      if (!form.classList.contains("verdict")) return;
      event.preventDefault();
      const verdict = event.submitter ? event.submitter.value : "confirm";
      decide(form.closest(".review-item"), verdict);
    });
    queue.addEventListener("focusin", (event) => {
      const item = event.target.closest(".review-item");
      if (item && item !== current) focusItem(item);
    });

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select") return;
      const canDecide = !!queue.querySelector("form.verdict");
      switch (event.key) {
        case "j": move(1); break;
        case "k": move(-1); break;
        case "s": nextOpen(); break;
        case "c": if (canDecide) decide(current, "confirm"); break;
        case "r": if (canDecide) decide(current, "reject"); break;
        case "u": undo(); break;
        case "x": {
          const box = current && current.querySelector("input[type=checkbox]");
          if (box) box.checked = !box.checked;
          break;
        }
        default: return;
      }
      event.preventDefault();
    });
    focusItem(open()[0]);
  }

  // --- try a text, live -----------------------------------------------------------------------
  const tryForm = document.getElementById("try-form");
  if (tryForm) {
    const target = document.getElementById("try-result");
    const text = tryForm.querySelector("textarea");
    let timer = null;
    let sequence = 0;
    async function score() {
      const mine = ++sequence;
      target.setAttribute("aria-busy", "true");
      try {
        const html = await post("/seeds/try", new FormData(tryForm), "text/html");
        if (mine === sequence) target.innerHTML = html; // server-rendered, autoescaped fragment
      } catch (error) {
        if (mine === sequence) target.textContent = "Scoring failed: " + error.message;
      } finally {
        target.removeAttribute("aria-busy");
      }
    }
    tryForm.addEventListener("submit", (event) => { event.preventDefault(); score(); });
    text.addEventListener("input", () => {
      clearTimeout(timer);
      if (text.value.trim().length >= 20) timer = setTimeout(score, 700);
    });
  }
})();
