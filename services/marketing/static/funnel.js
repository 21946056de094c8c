// The funnel page: reads GET /funnel (and sales' forecast) with the reader's bearer
// token and redraws every few seconds. The token comes from the address's #token=…
// fragment (never sent to a server, removed from the address at once) or is pasted;
// it is kept in this tab's sessionStorage only.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "leadflow.token";
const STEP_LABELS = {
  captured: "Captured",
  qualified: "Qualified (MQL)",
  deal_opened: "Deal opened",
  contacted: "First contact",
  "stage:prospecting": "Prospecting",
  "stage:qualifying": "Qualifying",
  "stage:presenting": "Presenting",
  "stage:handling_objections": "Handling objections",
  "stage:closing": "Closing",
  won: "Won",
  ordered: "Ordered",
  fulfilled: "Order fulfilled",
};
const COLORS = { met: "#1f9d62", breached: "#d64545", pending: "#c58a12", commit: "#1f9d62", best_case: "#2f6fde", pipeline: "#9db4e0" };

const $ = (id) => document.getElementById(id);
const charts = {};
let forecastUrl = null;
let timer = null;

function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class Refused extends Error {}

async function read(url) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const answer = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (answer.status === 401 || answer.status === 403) throw new Refused(`${answer.status} for ${url}`);
  if (!answer.ok) throw new Error(`${answer.status} for ${url}`);
  return answer.json();
}

function filters() {
  const query = new URLSearchParams();
  for (const [name, value] of new FormData($("filters"))) if (value) query.set(name, value);
  return query;
}

const number = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
const percent = (r) => (r === null || r === undefined ? "–" : `${(Number(r) * 100).toFixed(1)} %`);
const money = (list) => (list && list.length ? list.map((m) => `${number(Math.round(Number(m.amount)))} ${m.currency}`).join(" + ") : "0");

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 3600) return `≤ ${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `≤ ${Math.round(seconds / 3600)} h`;
  return `≤ ${Math.round(seconds / 86400)} d`;
}

function text(id, value) {
  $(id).textContent = value;
}

function rows(tbody, items, cells) {
  tbody.replaceChildren(
    ...items.map((item) => {
      const tr = document.createElement("tr");
      for (const [value, attrs] of cells(item)) {
        const td = document.createElement("td");
        td.textContent = value;
        for (const [k, v] of Object.entries(attrs || {})) td.setAttribute(k, v);
        tr.append(td);
      }
      return tr;
    }),
  );
}

function chart(id, config) {
  if (!charts[id]) charts[id] = new Chart($(id), config);
  return charts[id];
}

function drawFunnel(f) {
  const steps = f.steps;
  const funnel = chart("funnel-chart", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "Leads", data: [], backgroundColor: "#2f6fde" }] },
    options: {
      indexAxis: "y", animation: false, maintainAspectRatio: false,
      plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
  funnel.data.labels = steps.map((s) => STEP_LABELS[s.step] || s.step);
  funnel.data.datasets[0].data = steps.map((s) => s.count);
  funnel.update("none");
  rows($("steps").tBodies[0], steps, (s) => [
    [STEP_LABELS[s.step] || s.step],
    [number(s.count), { "data-step": s.step }],
    [percent(s.conversion)],
  ]);

  const byStep = Object.fromEntries(steps.map((s) => [s.step, s.count]));
  text("kpi-captured", number(byStep.captured));
  text("kpi-qualified", number(byStep.qualified));
  text("kpi-won", number(byStep.won));
  text("kpi-ordered", number(byStep.ordered));
  text("kpi-revenue", money(f.revenue));
  const h = f.handover;
  text("kpi-ttfc", duration(h.median_time_to_first_contact_seconds));
  text("kpi-breached", `${number(h.follow_up.breached)} of ${number(h.follow_up.met + h.follow_up.breached)}`);
  text("kpi-not-real", `${number(h.not_a_real_lead)} · ${percent(h.not_a_real_lead_share)}`);

  const reps = h.follow_up_by_rep;
  const sla = chart("sla-chart", {
    type: "bar",
    data: {
      labels: [],
      datasets: ["met", "breached", "pending"].map((k) => ({ label: k, data: [], backgroundColor: COLORS[k] })),
    },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
  sla.data.labels = reps.map((r) => r.owner);
  for (const dataset of sla.data.datasets) dataset.data = reps.map((r) => r[dataset.label]);
  sla.update("none");
  const names = Object.fromEntries(f.campaigns.map((c) => [c.key, c.name || c.key]));
  rows($("sla-campaigns").tBodies[0], h.follow_up_by_campaign, (c) => [
    [c.campaign_id === null ? "(no campaign)" : names[c.campaign_id] || c.campaign_id],
    [number(c.met)], [number(c.breached)], [number(c.pending)],
  ]);

  const reasons = (ul, counts, theirs) => {
    const entries = Object.entries(counts);
    ul.replaceChildren(
      ...(entries.length ? entries : [["none", 0]]).map(([reason, n]) => {
        const li = document.createElement("li");
        li.textContent = `${reason}: ${n}`;
        li.dataset.reason = reason;
        if (reason === theirs) li.className = "theirs";
        return li;
      }),
    );
  };
  reasons($("disqualified-by"), f.disqualified_by);
  reasons($("lost-reasons"), f.lost_reasons, "not_a_real_lead");

  rows($("campaigns").tBodies[0], f.campaigns, (c) => [
    [c.key === null ? "(no campaign)" : c.name || c.key],
    [number(c.captured), { "data-campaign": c.key || "", "data-field": "captured" }],
    [number(c.qualified)], [number(c.deal_opened)],
    [number(c.won), { "data-campaign": c.key || "", "data-field": "won" }],
    [number(c.ordered)], [money(c.revenue)],
    [c.spend ? money([c.spend]) : "–"],
    [c.roi === null ? (c.roi_note ? "n/a" : "–") : percent(c.roi), { title: c.roi_note || "" }],
  ]);
  fillOptions($("campaign"), f.campaigns.filter((c) => c.key !== null).map((c) => [c.key, c.name || c.key]));
  fillOptions($("channel"), f.channels.map((c) => [c.key, c.key]));
}

function fillOptions(select, options) {
  const have = new Map([...select.options].map((o) => [o.value, o]));
  for (const [value, label] of options) {
    if (have.has(value)) {
      have.get(value).textContent = label;
      continue;
    }
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
}

function drawForecast(fc) {
  const periods = fc.periods;
  const categories = ["commit", "best_case", "pipeline"];
  const forecast = chart("forecast-chart", {
    type: "bar",
    data: {
      labels: [],
      datasets: categories.map((k) => ({ label: k.replace("_", " "), key: k, data: [], backgroundColor: COLORS[k] })),
    },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
    },
  });
  forecast.data.labels = periods.map((p) => `${p.period} ${p.currency}`);
  for (const dataset of forecast.data.datasets) dataset.data = periods.map((p) => Number(p.by_category[dataset.key]));
  forecast.update("none");
  rows($("forecast").tBodies[0], periods, (p) => [
    [`${p.period} (${p.currency})`], [number(p.deals)],
    [money([{ amount: p.pipeline, currency: p.currency }])],
    [money([{ amount: p.weighted, currency: p.currency }]), { "data-period": p.period, "data-field": "weighted" }],
  ]);
  const measured = fc.stages.filter((s) => s.source === "measured").map((s) => s.stage);
  const unvalued = Object.values(fc.unvalued).reduce((a, b) => a + b, 0);
  text(
    "forecast-note",
    `Weights: ${fc.stages.map((s) => `${s.stage} ${percent(s.probability)}`).join(", ")}` +
      (measured.length ? ` (measured for ${measured.join(", ")})` : " (configured; measured once enough deals closed)") +
      `. ${unvalued} open deal(s) without a proposal are not valued.`,
  );
}

function drawAttribution(view) {
  const label = (c) => (c.campaign_id === null ? "(no campaign)" : c.name || c.campaign_id);
  // One bar per campaign, in the first currency of the total (the table shows them all).
  const currency = view.total.length ? view.total[0].currency : "EUR";
  const inCurrency = (c) => Number((c.revenue.find((m) => m.currency === currency) || { amount: 0 }).amount);
  const bars = chart("attribution-chart", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "", data: [], backgroundColor: "#2f6fde" }] },
    options: {
      indexAxis: "y", animation: false, maintainAspectRatio: false,
      plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } },
    },
  });
  bars.data.labels = view.campaigns.map(label);
  bars.data.datasets[0].label = `won revenue (${currency}), ${view.model.replace("_", " ")}`;
  bars.data.datasets[0].data = view.campaigns.map(inCurrency);
  bars.update("none");
  rows($("attribution").tBodies[0], view.campaigns, (c) => [
    [label(c)],
    [money(c.revenue), { "data-attributed": c.campaign_id || "" }],
    [c.roi === null ? "–" : percent(c.roi), { title: c.roi_note || "" }],
  ]);
  text("attribution-total", money(view.total));
}

function status(message, kind) {
  const el = $("status");
  el.textContent = message;
  el.className = kind;
}

let running = false;
let again = false;

// One read at a time: a filter change during a read asks for another right after it.
async function refresh() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  let next = POLL_MS;
  try {
    const f = await read(`/funnel?${filters()}`);
    drawFunnel(f);
    drawAttribution(await read(`/attribution?model=${$("model").value}`));
    if (forecastUrl) {
      try {
        drawForecast(await read(forecastUrl));
      } catch (failed) {
        text("forecast-note", `The forecast could not be read: ${failed.message}`);
      }
    }
    status(`live · updated ${new Date().toLocaleTimeString("en-GB")}`, "live");
    document.body.dataset.updated = String(Date.now());
  } catch (failed) {
    if (failed instanceof Refused) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`The token was refused (${failed.message}); paste another.`);
      next = null;
    } else {
      status(`retrying: ${failed.message}`, "error");
    }
  } finally {
    running = false;
  }
  if (again) {
    again = false;
    refresh();
  } else if (next !== null) {
    timer = setTimeout(refresh, next);
  }
}

function showLogin(message) {
  $("board").hidden = true;
  $("login").hidden = false;
  status(message || "a token is needed", "error");
}

async function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  try {
    forecastUrl = (await read("/funnel/sources")).forecast_url;
  } catch (failed) {
    if (failed instanceof Refused) return showLogin("The token was refused; paste another.");
    forecastUrl = null;
  }
  $("forecast-panel").hidden = !forecastUrl;
  refresh();
}

// Filters may come in the address (?campaign_id=…&since=…), so a view can be linked to.
function prefill() {
  const given = new URLSearchParams(window.location.search);
  for (const element of $("filters").elements) {
    const value = given.get(element.name);
    if (!value) continue;
    if (element.tagName === "SELECT" && ![...element.options].some((o) => o.value === value)) {
      element.append(new Option(value, value));
    }
    element.value = value;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  prefill();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("filters").addEventListener("change", () => refresh());
  $("model").addEventListener("change", () => refresh());
  if (takeToken()) start();
  else showLogin();
});
