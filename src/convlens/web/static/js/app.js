// The page shell: tabs, the URL's `tab`, the status line, and the four tab modules.

import { api } from "./api.js";
import { initExperiments } from "./pages/experiments.js";
import { initInspector } from "./pages/inspector.js";
import { initPlayground } from "./pages/playground.js";
import { initTrain } from "./pages/train.js";
import { $, toast } from "./ui.js";
import { readUrl, writeUrl } from "./url.js";

const TABS = ["playground", "inspector", "train", "experiments"];

async function main() {
  const info = await api("/api/info");
  let active = TABS.includes(readUrl().tab) ? readUrl().tab : "playground";
  const pages = {};
  const ctx = {
    info,
    root: document.body,
    toast,
    pendingSaveName: null,
    activeTab: () => active,
    switchTab: (name, params) => show(name, params),
    modelsChanged: () => pages.inspector.refreshModels(),
  };
  function show(name, params) {
    active = name;
    for (const tab of TABS) {
      $(`tab-${tab}`).hidden = tab !== name;
      document.querySelector(`.tabs [data-tab="${tab}"]`).setAttribute("aria-selected", String(tab === name));
    }
    writeUrl({ tab: name === "playground" ? null : name });
    document.body.dataset.tab = name;
    window.scrollTo(0, 0);
    for (const [tab, page] of Object.entries(pages)) if (tab !== name && page.deactivate) page.deactivate();
    return pages[name].activate(params);
  }
  document.querySelector(".tabs").addEventListener("click", (event) => {
    const tab = event.target.closest("[data-tab]")?.dataset.tab;
    if (tab) show(tab);
  });
  pages.playground = initPlayground(ctx);
  pages.inspector = initInspector(ctx);
  pages.train = initTrain(ctx);
  pages.experiments = initExperiments(ctx);
  const status = $("status");
  status.textContent = `convlens ${info.version}${info.course_ready ? "" : info.course_note ? " · training the course model…" : ""}`;
  await show(active);
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  document.body.dataset.ready = "error";
  toast(`The page could not start: ${err.message}`);
});
