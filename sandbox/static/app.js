// The sandbox web chat: plain JS over the control API (/sandbox/api). No build step.
"use strict";

const API = "/sandbox/api";
const $ = (sel) => document.querySelector(sel);
const state = { userId: null, chatId: null, seq: 0, users: [], me: null, renderedKey: "", botName: "Bot" };

async function api(method, path, body) {
  const form = body instanceof FormData;
  const resp = await fetch(API + path, {
    method,
    headers: body && !form ? { "Content-Type": "application/json" } : {},
    body: body ? (form ? body : JSON.stringify(body)) : undefined,
  });
  const data = await resp.json().catch(() => ({ ok: false, error: resp.statusText }));
  if (!resp.ok || data.ok === false) throw new Error(data.error || data.description || resp.statusText);
  return data;
}

function toast(text, alert) {
  const el = $("#toast");
  el.textContent = text;
  el.className = alert ? "alert" : "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, alert ? 4000 : 2500);
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Entities use UTF-16 offsets, which is exactly how JS strings index.
function renderEntities(text, entities) {
  if (!entities || !entities.length) return linkify(escapeHtml(text));
  const opens = {}, closes = {};
  const tags = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre", spoiler: "span", blockquote: "blockquote" };
  for (const e of entities) {
    let open, close;
    if (e.type === "text_link") { open = `<a href="${escapeHtml(e.url)}" class="link">`; close = "</a>"; }
    else if (tags[e.type]) { open = `<${tags[e.type]}>`; close = `</${tags[e.type]}>`; }
    else continue;
    (opens[e.offset] = opens[e.offset] || []).push(open);
    (closes[e.offset + e.length] = closes[e.offset + e.length] || []).unshift(close);
  }
  let out = "";
  for (let i = 0; i <= text.length; i++) {
    if (closes[i]) out += closes[i].join("");
    if (opens[i]) out += opens[i].join("");
    if (i < text.length) out += escapeHtml(text[i]);
  }
  return out;
}

function linkify(html) {
  return html.replace(/https:\/\/t\.me\/[+$][\w-]+/g, (u) => `<a href="${u}" class="link">${u}</a>`);
}

async function loadUsers() {
  const data = await api("GET", "/users");
  state.users = data.users;
  const sel = $("#user-select");
  sel.innerHTML = "";
  for (const u of state.users) {
    const opt = document.createElement("option");
    opt.value = u.id;
    opt.textContent = `${u.first_name} (${u.id})`;
    sel.appendChild(opt);
  }
  if (!state.userId && state.users.length) state.userId = state.users[0].id;
  if (state.userId) sel.value = String(state.userId);
}

async function loadMe() {
  if (!state.userId) return;
  const data = await api("GET", `/users/${state.userId}`);
  state.me = data;
  $("#user-info").textContent = `id ${data.user.id} · ${data.user.language_code || ""} · ⭐ ${data.user.stars}`;
  $("#block-toggle").textContent = data.user.blocked ? "Unblock bot" : "Block bot";
  const list = $("#chat-list");
  list.innerHTML = "";
  if (!state.chatId) state.chatId = state.userId;
  for (const c of data.chats) {
    const li = document.createElement("li");
    li.className = "chat-item" + (c.id === state.chatId ? " active" : "");
    li.dataset.chatId = c.id;
    li.textContent = c.type === "private" ? `🤖 ${c.title}` : `${c.type === "channel" ? "📢" : "👥"} ${c.title} (${c.my_status})`;
    li.dataset.unread = c.unread || 0;
    // The open chat is being read; its count would only flash before the read lands.
    if (c.unread && c.id !== state.chatId) {
      const badge = document.createElement("span");
      badge.className = "unread-badge";
      badge.textContent = c.unread;
      li.appendChild(badge);
    }
    li.onclick = () => { state.chatId = c.id; state.renderedKey = ""; refresh(); };
    list.appendChild(li);
  }
  if (!data.chats.some((c) => c.id === state.chatId)) {
    // The private chat with the bot appears once the user writes; show it anyway.
    const li = document.createElement("li");
    li.className = "chat-item" + (state.chatId === state.userId ? " active" : "");
    li.dataset.chatId = state.userId;
    li.textContent = `🤖 ${state.botName}`;
    li.onclick = () => { state.chatId = state.userId; refresh(); };
    list.prepend(li);
  }
  const cmds = $("#commands-menu");
  cmds.innerHTML = "";
  for (const c of data.commands || []) {
    const li = document.createElement("li");
    li.className = "command-item";
    li.textContent = `/${c.command} — ${c.description}`;
    li.onclick = () => { cmds.hidden = true; sendText("/" + c.command); };
    cmds.appendChild(li);
  }
  renderReplyKeyboard(state.chatId === state.userId ? data.reply_keyboard : null);
}

function renderReplyKeyboard(kb) {
  const box = $("#reply-keyboard");
  box.innerHTML = "";
  if (!kb || !kb.keyboard) return;
  for (const row of kb.keyboard) {
    const r = document.createElement("div");
    r.className = "reply-row";
    for (const b of row) {
      const label = typeof b === "string" ? b : b.text;
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "reply-button";
      btn.textContent = label;
      btn.onclick = () => pressReply(label, b);
      r.appendChild(btn);
    }
    box.appendChild(r);
  }
}

async function pressReply(label, button) {
  const extra = {};
  if (button && button.request_chat) {
    const id = prompt("Id of the chat to share (see the chat list)");
    if (!id) return;
    extra.shared_chat_id = Number(id);
  }
  try {
    await api("POST", `/users/${state.userId}/press`, { label, reply_keyboard: true, ...extra });
  } catch (e) { toast(e.message, true); }
  refresh();
}

function messageTitle(m) {
  if (m.from) return m.from.first_name;
  if (m.sender_chat) return m.sender_chat.title;
  return "";
}

function renderMessage(v) {
  const m = v.message;
  const div = document.createElement("div");
  div.className = "message " + (v.outgoing ? "from-bot" : "from-user");
  div.dataset.messageId = m.message_id;
  let html = "";
  if (m.chat.type !== "private" && !v.outgoing) html += `<div class="sender">${escapeHtml(messageTitle(m))}</div>`;
  html += mediaHtml(m);
  if (m.text !== undefined) html += `<div class="text">${renderEntities(m.text, m.entities)}</div>`;
  if (m.caption !== undefined) html += `<div class="text caption">${renderEntities(m.caption, m.caption_entities)}</div>`;
  if (m.poll) html += pollHtml(m.poll);
  if (m.invoice) {
    const inv = m.invoice;
    const price = inv.currency === "XTR" ? `⭐ ${inv.total_amount}` : `${(inv.total_amount / 100).toFixed(2)} ${inv.currency}`;
    html += `<div class="invoice"><b>${escapeHtml(inv.title)}</b><br>${escapeHtml(inv.description)}<br><span class="price">${price}</span></div>`;
  }
  const service = serviceText(m);
  if (service) { div.className = "message service"; html += escapeHtml(service); }
  html += `<div class="meta">${v.edited ? "edited · " : ""}#${m.message_id}${m.has_protected_content ? " · 🔒" : ""}</div>`;
  div.innerHTML = html;
  const rows = (m.reply_markup && m.reply_markup.inline_keyboard) || [];
  if (rows.length) {
    const kb = document.createElement("div");
    kb.className = "inline-keyboard";
    rows.forEach((row, ri) => {
      const r = document.createElement("div");
      r.className = "inline-row";
      row.forEach((b, ci) => {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "inline-button" + (b.pay ? " pay-button" : "");
        btn.textContent = b.text + (b.url ? " ↗" : "");
        btn.dataset.row = ri;
        btn.dataset.col = ci;
        btn.onclick = () => pressInline(m, ri, ci, b);
        r.appendChild(btn);
      });
      kb.appendChild(r);
    });
    div.appendChild(kb);
  }
  for (const b of div.querySelectorAll("button.poll-option")) {
    b.onclick = () => votePoll(m, Number(b.dataset.option));
  }
  for (const a of div.querySelectorAll("a.link")) {
    a.onclick = (ev) => { ev.preventDefault(); openLink(a.getAttribute("href")); };
  }
  return div;
}

// A poll or quiz: one button per option with its count; tapping one votes.
function pollHtml(p) {
  const kind = p.type === "quiz" ? "Quiz" : "Poll";
  let html = `<div class="poll"><div class="poll-kind">${kind}${p.is_anonymous ? " · anonymous" : ""}${p.is_closed ? " · closed" : ""}</div>`;
  html += `<b>${escapeHtml(p.question)}</b>`;
  p.options.forEach((o, i) => {
    html += `<button type="button" class="poll-option" data-option="${i}"${p.is_closed ? " disabled" : ""}>${escapeHtml(o.text)} <span class="count">${o.voter_count}</span></button>`;
  });
  return html + `<div class="meta">${p.total_voter_count} voted</div></div>`;
}

async function votePoll(m, option) {
  try {
    const out = await api("POST", `/users/${state.userId}/vote`, { chat_id: m.chat.id, message_id: m.message_id, option_ids: [option] });
    if (out.correct === true) toast("✅ Correct");
    else if (out.correct === false) toast("❌ Wrong" + (out.explanation ? " — " + out.explanation : ""), true);
  } catch (e) { toast(e.message, true); }
}

// Files sent by URL have no bytes in the sandbox (no file_size): those show a placeholder.
function fileUrl(f) { return `${API}/files/${encodeURIComponent(f.file_id)}`; }

function mediaHtml(m) {
  let html = "";
  if (m.photo) {
    const p = m.photo[m.photo.length - 1];
    html += p.file_size ? `<img class="photo" src="${fileUrl(p)}" alt="photo">` : `<div class="photo">🖼 photo</div>`;
  }
  if (m.video) html += `<div class="photo">🎬 video</div>`;
  if (m.document) {
    const d = m.document, name = escapeHtml(d.file_name || "document");
    html += d.file_size ? `<a class="document" href="${fileUrl(d)}" download="${name}">📄 ${name}</a>` : `<div class="document">📄 ${name}</div>`;
  }
  if (m.voice) {
    const v = m.voice;
    html += `<div class="voice">🎤 voice · ${v.duration}s${v.file_size ? `<audio controls preload="none" src="${fileUrl(v)}"></audio>` : ""}</div>`;
  }
  return html;
}

function serviceText(m) {
  if (m.successful_payment) {
    const p = m.successful_payment;
    return `✅ Paid ${p.currency === "XTR" ? "⭐ " + p.total_amount : (p.total_amount / 100).toFixed(2) + " " + p.currency}`;
  }
  if (m.refunded_payment) return `↩️ Refunded ⭐ ${m.refunded_payment.total_amount}`;
  if (m.new_chat_members) return `${m.new_chat_members.map((u) => u.first_name).join(", ")} joined`;
  if (m.chat_shared) return `Shared chat ${m.chat_shared.chat_id}`;
  if (m.group_chat_created || m.supergroup_chat_created || m.channel_chat_created) return "Chat created";
  return "";
}

async function pressInline(m, row, col, button) {
  try {
    if (button.pay) return await payInvoice(m);
    if (button.url) return openLink(button.url);
    const data = await api("POST", `/users/${state.userId}/press`, { chat_id: m.chat.id, message_id: m.message_id, row, col });
    if (data.kind === "callback") waitAnswer(data.callback_query_id);
    else if (data.kind === "copy_text") toast("Copied: " + data.text);
  } catch (e) { toast(e.message, true); }
}

async function waitAnswer(queryId) {
  for (let i = 0; i < 20; i++) {
    const q = await api("GET", `/callbacks/${queryId}`);
    if (q.answered) { if (q.text) toast(q.text, q.show_alert); return; }
    await api("GET", `/wait?seq=${q.seq}&timeout=1`);
  }
}

async function payInvoice(m) {
  toast("Paying…");
  try {
    const out = await api("POST", `/users/${state.userId}/pay`, { chat_id: m.chat.id, message_id: m.message_id });
    if (out.status === "paid") toast("Payment successful");
    else toast(`Payment failed: ${out.reason}${out.error_message ? " — " + out.error_message : ""}`, true);
  } catch (e) { toast(e.message, true); }
  refresh();
}

async function openLink(url) {
  try {
    if (url.startsWith("https://t.me/$")) {
      const out = await api("POST", `/users/${state.userId}/pay`, { link: url });
      toast(out.status === "paid" ? "Payment successful" : `Payment failed: ${out.reason}`, out.status !== "paid");
    } else if (url.startsWith("https://t.me/+")) {
      const out = await api("POST", `/users/${state.userId}/join`, { link: url });
      toast(out.status === "failed" ? `Could not join: ${out.reason}` : `Join: ${out.status}`, out.status === "failed");
      if (out.chat_id && out.status !== "failed" && out.status !== "requested") state.chatId = out.chat_id;
    } else {
      window.open(url, "_blank");
    }
  } catch (e) { toast(e.message, true); }
  refresh();
}

async function loadMessages() {
  if (!state.chatId) return;
  const chat = state.me && state.me.chats.find((c) => c.id === state.chatId);
  let messages;
  // The private chat with the bot does not exist until the user first writes.
  try { messages = (await api("GET", `/chats/${state.chatId}/messages`)).messages; }
  catch (e) { messages = []; }
  if (chat && chat.unread) api("POST", `/users/${state.userId}/read`, { chat_id: state.chatId }).catch(() => {});
  const key = `${state.chatId}|` + messages.map((v) => `${v.message.message_id}:${v.seq}`).join(",");
  if (key === state.renderedKey) return;
  state.renderedKey = key;
  const box = $("#messages");
  box.innerHTML = "";
  if (!messages.length && state.chatId === state.userId) box.appendChild(startPrompt());
  for (const v of messages) box.appendChild(renderMessage(v));
  box.scrollTop = box.scrollHeight;
  $("#chat-title").textContent = chat ? chat.title : state.botName;
}

// An empty chat with a bot offers Start, as Telegram's apps do.
function startPrompt() {
  const div = document.createElement("div");
  div.id = "start-prompt";
  div.innerHTML = `<div class="start-title">${escapeHtml(state.botName)}</div><div>Press Start to talk to the bot.</div>`;
  const btn = document.createElement("button");
  btn.id = "start-button";
  btn.type = "button";
  btn.textContent = "Start";
  btn.onclick = () => sendText("/start");
  div.appendChild(btn);
  return div;
}

async function refresh() {
  try {
    await loadMe();
    await loadMessages();
  } catch (e) { console.error(e); }
}

async function sendText(text) {
  if (!text || !state.userId) return;
  const chat = state.me && state.me.chats.find((c) => c.id === state.chatId);
  try {
    if (chat && chat.type === "channel") {
      // Channels have posts, not messages from members: the owner or an admin posts.
      await api("POST", `/chats/${state.chatId}/post`, { user_id: state.userId, text });
    } else {
      await api("POST", `/users/${state.userId}/send`, { text, chat_id: state.chatId });
    }
  } catch (e) { toast(e.message, true); }
  refresh();
}

async function sendMedia(kind, input) {
  const file = input.files[0];
  input.value = "";  // picking the same file again is a new message
  if (!file || !state.userId) return;
  const form = new FormData();
  form.append("kind", kind);
  form.append("file", file, file.name);
  form.append("chat_id", state.chatId);
  const caption = $("#text-input").value.trim();
  if (caption) form.append("caption", caption);
  if (kind === "voice") form.append("duration", await audioDuration(file));
  try {
    await api("POST", `/users/${state.userId}/media`, form);
    $("#text-input").value = "";
  } catch (e) { toast(e.message, true); }
  refresh();
}

// A Telegram app reports a voice message's length; the browser can read it from the file.
function audioDuration(file) {
  return new Promise((resolve) => {
    const audio = new Audio();
    const url = URL.createObjectURL(file);
    const done = (d) => { URL.revokeObjectURL(url); resolve(Number.isFinite(d) ? Math.round(d) : 0); };
    audio.onloadedmetadata = () => done(audio.duration);
    audio.onerror = () => done(0);
    setTimeout(() => done(0), 2000);
    audio.src = url;
  });
}

async function watch() {
  // Long poll: re-render whenever the sandbox changes.
  for (;;) {
    try {
      const data = await api("GET", `/wait?seq=${state.seq}&timeout=20`);
      if (data.seq !== state.seq) {
        state.seq = data.seq;
        await loadUsers();
        await refresh();
      }
    } catch (e) {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function wire() {
  $("#composer").onsubmit = (ev) => {
    ev.preventDefault();
    const input = $("#text-input");
    const text = input.value.trim();
    input.value = "";
    sendText(text);
  };
  $("#user-select").onchange = (ev) => {
    state.userId = Number(ev.target.value);
    state.chatId = state.userId;
    state.renderedKey = "";
    localStorage.setItem("sandbox-user", state.userId);
    refresh();
  };
  $("#create-user").onclick = async () => {
    const name = $("#new-user-name").value.trim() || "Learner";
    const data = await api("POST", "/users", { first_name: name, language_code: $("#new-user-lang").value });
    state.userId = data.user.id;
    state.chatId = state.userId;
    localStorage.setItem("sandbox-user", state.userId);
    await loadUsers();
    refresh();
  };
  $("#block-toggle").onclick = async () => {
    const blocked = state.me && state.me.user.blocked;
    await api("POST", `/users/${state.userId}/${blocked ? "unblock" : "block"}`);
    refresh();
  };
  $("#as-creator").onclick = async () => {
    // The demo starts a "Creator" user (an admin of the bot); create one if there is none.
    let creator = state.users.find((u) => u.first_name === "Creator");
    if (!creator) creator = (await api("POST", "/users", { first_name: "Creator", language_code: "en" })).user;
    state.userId = creator.id;
    state.chatId = creator.id;
    state.renderedKey = "";
    localStorage.setItem("sandbox-user", state.userId);
    await loadUsers();
    refresh();
  };
  $("#join-button").onclick = () => openLink($("#join-link").value.trim());
  $("#create-chat").onclick = async () => {
    const title = $("#new-chat-title").value.trim() || "My group";
    const body = { title, type: $("#new-chat-type").value, creator_id: state.userId };
    if ($("#new-chat-bot").checked) body.add_bot = { status: "administrator" };
    try {
      const data = await api("POST", "/chats", body);
      state.chatId = data.chat.id;
      toast(`Created ${title} (${data.chat.id})`);
    } catch (e) { toast(e.message, true); }
    refresh();
  };
  for (const kind of ["photo", "document", "voice"]) {
    const input = $(`#${kind}-input`);
    input.onchange = () => sendMedia(kind, input);
  }
  $("#commands-button").onclick = () => { $("#commands-menu").hidden = !$("#commands-menu").hidden; };
}

async function main() {
  wire();
  const params = new URLSearchParams(location.search);
  const wanted = params.get("user") || localStorage.getItem("sandbox-user");
  await loadUsers();
  if (wanted && state.users.some((u) => String(u.id) === String(wanted))) state.userId = Number(wanted);
  if (!state.users.length) {
    const data = await api("POST", "/users", { first_name: "Learner", language_code: "en" });
    state.userId = data.user.id;
    await loadUsers();
  }
  state.chatId = Number(params.get("chat")) || state.userId;
  const info = await api("GET", "/info");
  $("#bot-info").textContent = `Bot @${info.bot.username} · ${info.spec_version}`;
  state.botName = info.bot.first_name;
  state.seq = info.seq;
  await refresh();
  document.body.dataset.ready = "1";
  watch();
}

main();
