// The admin page: VMs and their NICs, over the engine's REST API.  Plain JavaScript, no build.
// Buttons are enabled from each object's "disabled_actions", which the engine computes with the
// same canDo rules it applies; when the engine refuses anyway, its message is shown.
"use strict";

const API = "/ovirt-engine/api";
const TOKEN_URL = "/ovirt-engine/sso/oauth/token";
const POLL_MS = 1000;
const PAGE = 50;  // VMs (and hosts) a page shows: the page never asks for every VM

const state = {
  token: sessionStorage.getItem("hotplug-token") || "",
  user: "", role: "",
  vms: [], clusters: {}, hosts: {}, profiles: {}, networks: {},
  vmId: null, nics: [], nicId: null, events: [],
  search: "", page: 1, vmError: "",  // the VM table's search and page
  pending: {},   // nic id -> what is in progress ("Plugging", "Unplugging")
  failed: {},    // nic id -> {reason, plugged}: the engine's reason, and the state it left
  dialog: null,  // {mode: "new" | "edit", nic}
  shown: { vms: "", nics: "", hosts: "", events: "", unmanaged: "" },
  polls: 0,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.error_description || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || body.error || "";
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) { showLogin("Your session has ended; log in again."); throw new ApiError(401, data); }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// -- login -------------------------------------------------------------------------------------
function showLogin(why) {
  state.token = "";
  sessionStorage.removeItem("hotplug-token");
  $("app").hidden = true; $("whoami").hidden = true; $("login").hidden = false;
  $("login-error").textContent = why || "";
  $("login-password").focus();
}

async function login(event) {
  event.preventDefault();
  const form = new URLSearchParams({ grant_type: "password", scope: "ovirt-app-api",
    username: $("login-user").value, password: $("login-password").value });
  const resp = await fetch(TOKEN_URL, { method: "POST", body: form });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) { $("login-error").textContent = data.error_description || "Login failed"; return; }
  state.token = data.access_token;
  sessionStorage.setItem("hotplug-token", state.token);
  $("login-password").value = "";
  await start();
}

async function start() {
  const root = await api("GET", "");
  state.user = root.authenticated_user.user_name;
  state.role = root.authenticated_user.role;
  $("user-name").textContent = `${state.user}${state.role === "readonly" ? " (read only)" : ""}`;
  $("login").hidden = true; $("whoami").hidden = false; $("app").hidden = false;
  await refresh();
}

// -- data ----------------------------------------------------------------------------------------
const byId = (items) => Object.fromEntries(items.map((x) => [x.id, x]));

async function refreshInventory() {
  const [clusters, networks, profiles] = await Promise.all(
    ["/clusters", "/networks", "/vnicprofiles"].map((p) => api("GET", p)));
  state.clusters = byId(clusters.cluster);
  state.networks = byId(networks.network); state.profiles = byId(profiles.vnic_profile);
}

// The hosts table: the first page of hosts, plus the hosts of the VMs shown (each asked for once
// and then kept fresh with the others), never every host of a large installation.
async function refreshHosts() {
  const hosts = byId((await api("GET", `/hosts?max=${PAGE}`)).host);
  const missing = state.vms.map((v) => v.host && v.host.id).filter((id) => id && !hosts[id]);
  for (const id of new Set(missing)) hosts[id] = await api("GET", `/hosts/${id}`).catch(() => undefined);
  state.hosts = Object.fromEntries(Object.entries(hosts).filter(([, h]) => h));
}

function vmQuery() {
  const search = `${state.search} page ${state.page}`.trim();
  return `/vms?max=${PAGE}&search=${encodeURIComponent(search)}`;
}

async function refresh() {
  if (!state.token) return;
  // Networks and profiles change rarely: reread them every fifth refresh.
  if (state.polls++ % 5 === 0) await refreshInventory();
  try {
    state.vms = (await api("GET", vmQuery())).vm;
    state.vmError = "";
  } catch (e) {
    if (e.status !== 400) throw e;
    state.vmError = e.message; state.vms = [];  // a search the engine cannot read: say why
  }
  // Hosts change status as monitoring sees them: reread them every second refresh.
  if (state.polls % 2 === 0 || state.vms.some((v) => v.host && !state.hosts[v.host.id])) await refreshHosts();
  if (state.vmId && !state.vms.some((v) => v.id === state.vmId)) state.vmId = null;
  state.nics = state.vmId ? (await api("GET", `/vms/${state.vmId}/nics`)).nic : [];
  state.events = state.vmId ? (await api("GET", `/events?vm=${state.vmId}`)).event.slice(0, 10) : [];
  if (state.nicId && !state.nics.some((n) => n.id === state.nicId)) state.nicId = null;
  render();
}

async function poll() {
  try { await refresh(); } catch (e) { if (e.status !== 401) console.warn(e); }
  setTimeout(poll, POLL_MS);
}

// -- rendering -----------------------------------------------------------------------------------
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const vm = () => state.vms.find((v) => v.id === state.vmId);
const nic = () => state.nics.find((n) => n.id === state.nicId);

function pci(address) {
  if (!address) return "";
  const hex = (v, w) => parseInt(v, 16).toString(16).padStart(w, "0");
  return `${hex(address.domain, 4)}:${hex(address.bus, 2)}:${hex(address.slot, 2)}.${hex(address.function, 1)}`;
}

function nicStatus(n) {
  if (state.pending[n.id]) return ["progress", "⟳", `${state.pending[n.id]}…`, `${state.pending[n.id]}, waiting for the host`];
  const failure = state.failed[n.id];
  if (failure && failure.plugged === n.plugged) return ["failed", "!", "Failed", failure.reason];
  delete state.failed[n.id];   // someone changed it since: the failure is history
  return n.plugged ? ["plugged", "●", "Plugged", "Plugged into the VM"] : ["unplugged", "○", "Unplugged", "Not plugged"];
}

// Whether a NIC's profile mirrors its network: every frame of the network's bridge on this host
// is copied to the NIC.
function mirroring(profile, network) {
  if (!profile || !profile.port_mirroring) return "No";
  const what = `Mirrors all traffic of ${network ? network.name : "its network"} on its host`;
  return `<span title="${esc(what)}">Yes</span><span class="sr-only">: ${esc(what)}</span>`;
}

function render() {
  const vmRows = state.vms.map((v) => {
    const off = v.disabled_actions || {};
    const cluster = state.clusters[v.cluster.id];
    const host = v.host ? state.hosts[v.host.id] : null;
    return `<tr data-vm="${v.id}" class="${v.id === state.vmId ? "selected" : ""}">
      <td><button type="button" class="vm-select" aria-pressed="${v.id === state.vmId}">${esc(v.name)}</button></td>
      <td class="vm-status">${esc(v.status)}</td><td>${esc(cluster ? cluster.name : "")}</td><td>${esc(host ? host.name : "")}</td>
      <td><button type="button" class="vm-start" ${off.start ? "disabled" : ""} title="${esc(off.start || "Start the VM")}">Start</button>
          <button type="button" class="vm-stop" ${off.stop ? "disabled" : ""} title="${esc(off.stop || "Stop the VM")}">Stop</button></td></tr>`;
  }).join("");
  if (vmRows !== state.shown.vms) { $("vms").tBodies[0].innerHTML = vmRows; state.shown.vms = vmRows; }
  $("vm-page").textContent = state.vmError || `Page ${state.page}${state.vms.length ? "" : ": no VMs"}`;
  $("vm-previous").disabled = state.page <= 1;
  $("vm-next").disabled = state.vms.length < PAGE;
  const hostRows = Object.values(state.hosts).map((h) => `<tr data-host="${h.id}">
      <td>${esc(h.name)}</td><td>${esc(`${h.address}:${h.port}`)}</td>
      <td class="host-status state-${esc(h.status)}">${esc(h.status.replace("_", " "))}</td>
      <td>${esc(h.last_seen ? new Date(h.last_seen).toLocaleTimeString() : "never")}</td></tr>`).join("");
  if (hostRows !== state.shown.hosts) { $("hosts").tBodies[0].innerHTML = hostRows; state.shown.hosts = hostRows; }

  const current = vm();
  $("nics-panel").hidden = !current;
  if (!current) return;
  $("nics-title").textContent = `Network Interfaces of ${current.name}`;
  const nicRows = state.nics.map((n) => {
    const [cls, icon, label, why] = nicStatus(n);
    const profile = n.vnic_profile ? state.profiles[n.vnic_profile.id] : null;
    const network = profile ? state.networks[profile.network.id] : null;
    const checked = n.id === state.nicId ? "checked" : "";
    return `<tr data-nic="${n.id}" class="${checked ? "selected" : ""}">
      <td><input type="radio" name="nic" class="nic-select" aria-label="Choose ${esc(n.name)}" ${checked}></td>
      <td class="nic-status state-${cls}" title="${esc(why)}"><span class="icon" aria-hidden="true">${icon}</span>
        <span class="status-text">${esc(label)}</span><span class="sr-only">: ${esc(why)}</span></td>
      <td class="nic-name">${esc(n.name)}</td>
      <td class="nic-profile">${esc(network ? `${network.name} / ${profile.name}` : "")}</td>
      <td class="nic-mirroring">${mirroring(profile, network)}</td>
      <td>${esc(n.interface)}</td><td class="nic-mac">${esc(n.mac.address)}</td>
      <td class="nic-pci">${esc(pci(n.address))}</td><td class="nic-link">${n.linked ? "Up" : "Down"}</td></tr>`;
  }).join("");
  if (nicRows !== state.shown.nics) { $("nics").tBodies[0].innerHTML = nicRows; state.shown.nics = nicRows; }
  const unmanaged = ((current.unmanaged_nics || {}).unmanaged_nic || []).map((u) =>
    `<li>MAC ${esc(u.mac.address)}, alias ${esc(u.alias || "(none)")}${u.address ? `, PCI ${esc(pci(u.address))}` : ""}</li>`).join("");
  $("unmanaged").hidden = !unmanaged;
  if (unmanaged !== state.shown.unmanaged) { $("unmanaged-list").innerHTML = unmanaged; state.shown.unmanaged = unmanaged; }
  const events = state.events.map((e) => `<li class="event severity-${esc(e.severity)}">
      <time datetime="${esc(e.time)}">${esc(new Date(e.time).toLocaleTimeString())}</time>
      <span class="event-text">${esc(e.description)}</span></li>`).join("");
  if (events !== state.shown.events) { $("events").innerHTML = events; state.shown.events = events; }
  renderToolbar();
}

const NIC_ACTIONS = { edit: "nic-edit", remove: "nic-remove", activate: "nic-activate", deactivate: "nic-deactivate" };

function renderToolbar() {
  const chosen = nic();
  const v = vm();
  const noNew = !v ? "Choose a VM first" : (v.disabled_actions || {}).add_nic || "";
  $("nic-new").disabled = Boolean(noNew);
  $("nic-new").title = noNew || "Add a network interface";
  const reasons = [];
  for (const [action, id] of Object.entries(NIC_ACTIONS)) {
    const off = chosen ? chosen.disabled_actions || {} : {};
    let why = !chosen ? "Choose a network interface first" : off[action] || "";
    // Edit opens for a change of the link alone when that is all the engine allows now.
    const only = action === "edit" && why && !off.edit_link ? why : "";
    if (only) why = "";
    const busy = chosen && state.pending[chosen.id];
    $(id).disabled = Boolean(why || busy);
    $(id).title = why || (only ? `Only the link state can change: ${only}` : "");
    if (chosen && (why || only)) reasons.push(`${$(id).textContent}: ${why || only}`);
  }
  const help = [...new Set(reasons)].map((r) => `<li>${esc(r)}</li>`).join("");
  if ($("nic-help").innerHTML !== help) $("nic-help").innerHTML = help;
}

function say(text) { $("message").textContent = text; $("problem").textContent = ""; }
function complain(text) { $("problem").textContent = text; }

// -- actions -------------------------------------------------------------------------------------
async function vmAction(vmId, action) {
  const v = state.vms.find((x) => x.id === vmId);
  say(`${action === "start" ? "Starting" : "Stopping"} ${v.name}…`);
  try { await api("POST", `/vms/${vmId}/${action}`, {}); say(`VM ${v.name} ${action === "start" ? "started" : "stopped"}.`); }
  catch (e) { complain(e.message); }
  await refresh();
}

async function plug(plugIt) {
  const n = nic();
  if (!n) return;
  state.pending[n.id] = plugIt ? "Plugging" : "Unplugging";
  delete state.failed[n.id];
  render();
  try {
    await api("POST", `/vms/${state.vmId}/nics/${n.id}/${plugIt ? "activate" : "deactivate"}`, {});
    say(`NIC ${n.name} ${plugIt ? "activated" : "deactivated"}.`);
  } catch (e) {
    state.failed[n.id] = { reason: e.message, plugged: n.plugged };
    complain(`NIC ${n.name}: ${e.message}`);
  } finally {
    delete state.pending[n.id];
  }
  await refresh();
}

async function removeNic() {
  const n = nic();
  if (!n) return;
  try { await api("DELETE", `/vms/${state.vmId}/nics/${n.id}`); say(`NIC ${n.name} removed.`); state.nicId = null; }
  catch (e) { complain(e.message); }
  await refresh();
}

async function openDialog(mode) {
  const n = mode === "edit" ? nic() : null;
  state.dialog = { mode, nic: n };
  // The profiles of the networks the engine says belong to the VM's cluster.
  const inCluster = byId((await api("GET", `/clusters/${vm().cluster.id}/networks`)).network);
  const profiles = Object.values(state.profiles).filter((p) => inCluster[p.network.id]);
  $("nic-profile").innerHTML = profiles.map((p) =>
    `<option value="${p.id}">${esc(inCluster[p.network.id].name)} / ${esc(p.name)}</option>`).join("");
  $("nic-dialog-title").textContent = n ? `Edit Network Interface ${n.name}` : "New Network Interface";
  $("nic-name").value = n ? n.name : `nic${state.nics.length + 1}`;
  if (n && n.vnic_profile) $("nic-profile").value = n.vnic_profile.id;
  $("nic-model").value = n ? n.interface : "virtio";
  $("nic-mac").value = n ? n.mac.address : "";
  // A NIC plugged into a running VM: the engine allows its link state alone to change.
  const linkOnly = n ? (n.disabled_actions || {}).edit || "" : "";
  state.dialog.linkOnly = Boolean(linkOnly);
  for (const id of ["nic-name", "nic-profile", "nic-model", "nic-mac"]) $(id).disabled = Boolean(linkOnly);
  $("nic-link-only").hidden = !linkOnly;
  $("nic-link-only").textContent = linkOnly ? `Only the link state can change now: ${linkOnly}` : "";
  $("nic-activate-row").hidden = Boolean(n);
  $("nic-activate-box").checked = true;   // the seed: checked by default
  $("nic-linked-box").checked = n ? n.linked : true;
  $("nic-form-error").textContent = "";
  $("nic-dialog").showModal();
  $(state.dialog.linkOnly ? "nic-linked-box" : "nic-name").focus();
}

async function submitDialog(event) {
  event.preventDefault();
  const { mode, nic: n, linkOnly } = state.dialog;
  const body = linkOnly ? { linked: $("nic-linked-box").checked } : { name: $("nic-name").value,
    interface: $("nic-model").value, vnic_profile: { id: $("nic-profile").value }, linked: $("nic-linked-box").checked };
  if ($("nic-mac").value && !linkOnly) body.mac = { address: $("nic-mac").value };
  try {
    if (mode === "new") {
      body.plugged = $("nic-activate-box").checked;
      const created = await api("POST", `/vms/${state.vmId}/nics`, body);
      state.nicId = created.id;
      say(`NIC ${created.name} added${created.plugged ? " and activated" : ""}.`);
    } else {
      const updated = await api("PUT", `/vms/${state.vmId}/nics/${n.id}`, body);
      say(linkOnly ? `NIC ${updated.name}: link ${updated.linked ? "up" : "down"}.` : `NIC ${updated.name} updated.`);
    }
    $("nic-dialog").close();
  } catch (e) {
    $("nic-form-error").textContent = e.message;   // the dialog stays open with the engine's reason
  }
  await refresh();
}

// -- wiring --------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => login(e).catch((err) => { $("login-error").textContent = err.message; }));
  $("logout").addEventListener("click", () => showLogin(""));
  $("vms").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-vm]");
    if (!row) return;
    if (e.target.classList.contains("vm-select")) { state.vmId = row.dataset.vm; state.nicId = null; refresh(); }
    if (e.target.classList.contains("vm-start")) vmAction(row.dataset.vm, "start");
    if (e.target.classList.contains("vm-stop")) vmAction(row.dataset.vm, "stop");
  });
  $("vm-search-form").addEventListener("submit", (e) => {
    e.preventDefault(); state.search = $("vm-search").value.trim(); state.page = 1; refresh();
  });
  $("vm-previous").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); refresh(); });
  $("vm-next").addEventListener("click", () => { state.page += 1; refresh(); });
  $("nics").addEventListener("change", (e) => {
    const row = e.target.closest("tr[data-nic]");
    if (row) { state.nicId = row.dataset.nic; state.shown.nics = ""; render(); }
  });
  $("nic-new").addEventListener("click", () => openDialog("new").catch((e) => complain(e.message)));
  $("nic-edit").addEventListener("click", () => openDialog("edit").catch((e) => complain(e.message)));
  $("nic-remove").addEventListener("click", removeNic);
  $("nic-activate").addEventListener("click", () => plug(true));
  $("nic-deactivate").addEventListener("click", () => plug(false));
  $("nic-form").addEventListener("submit", submitDialog);
  $("nic-cancel").addEventListener("click", () => $("nic-dialog").close());
  if (state.token) start().catch(() => showLogin("")); else showLogin("");
  setTimeout(poll, POLL_MS);
});
