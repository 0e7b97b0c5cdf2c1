/** The console's only assets, served by the app itself (no CDN, no web fonts). */

export const consoleCss = `
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--accent:#2457c5;--ok:#1a7f37;--warn:#9a6700;--bad:#c62828;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;padding:.6rem 1rem;background:#1d2330;color:#fff}
header.top a{color:#dfe6f5}header.top a.on{color:#fff;font-weight:600;border-bottom:2px solid #7da2ff}
header.top .brand{font-weight:700;color:#fff;margin-right:.5rem}
header.top nav{display:flex;flex-wrap:wrap;gap:.3rem .9rem;flex:1}
header.top form{margin:0}header.top button{background:transparent;color:#dfe6f5;border:1px solid #566;padding:.2rem .6rem}
main{max-width:1100px;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:1rem;margin-bottom:1rem}
table{width:100%;border-collapse:collapse;background:var(--card)}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
.scroll{overflow-x:auto}
label{display:block;font-weight:600;margin:.7rem 0 .2rem}
label .hint{font-weight:400;color:var(--muted);font-size:.85rem}
input[type=text],input[type=password],input[type=number],input[type=search],select,textarea{width:100%;max-width:100%;padding:.45rem .5rem;border:1px solid #b9c1cf;border-radius:4px;font:inherit;background:#fff}
textarea{font-family:var(--mono);font-size:13px;min-height:14rem}
.field-error{color:var(--bad);font-size:.9rem;margin:.2rem 0}
input.invalid,textarea.invalid,select.invalid{border-color:var(--bad)}
button,.button{display:inline-block;padding:.45rem .9rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;font:inherit;cursor:pointer}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.8rem}
.actions form{margin:0}
.row{display:flex;flex-wrap:wrap;gap:.8rem}.row>*{flex:1 1 14rem}
.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.8rem}.filters>*{flex:0 1 14rem}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;font-size:.78rem;border:1px solid var(--line);background:#eef1f6;color:var(--muted);white-space:nowrap}
.badge.deployed,.badge.SUCCESS,.badge.online{background:#dcf5e3;color:var(--ok);border-color:#a6e0b6}
.badge.not_deployed,.badge.PROCESSING{background:#fff4d6;color:var(--warn);border-color:#f0d58a}
.badge.shutdown,.badge.offline{background:#eceff3;color:#667}
.badge.FAILED,.badge.revoked{background:#fde2e2;color:var(--bad);border-color:#f3b0b0}
.flash{padding:.6rem .8rem;border-radius:4px;margin-bottom:1rem;background:#e7f0ff;border:1px solid #b8cdf5}
.flash.error{background:#fde2e2;border-color:#f3b0b0;color:#7a1414}
.secret{font-family:var(--mono);background:#fff8d6;border:1px dashed #d4b94a;padding:.6rem;word-break:break-all;user-select:all}
pre,code{font-family:var(--mono);font-size:13px}
pre{background:#f1f3f7;border:1px solid var(--line);padding:.6rem;overflow:auto;max-height:28rem}
pre.diff .add{color:var(--ok);background:#e9f8ee;display:block}pre.diff .del{color:var(--bad);background:#fdeeee;display:block}pre.diff .hunk{color:#6a4fb0;display:block}
.vars{list-style:none;padding:0;margin:.3rem 0}.vars li{margin:.25rem 0}
.vars button{padding:.1rem .4rem;font-family:var(--mono);font-size:12px;background:#fff;color:var(--accent)}
.muted{color:var(--muted)}.small{font-size:.85rem}
.editor{display:grid;grid-template-columns:minmax(0,1fr) 18rem;gap:1rem}
@media (max-width:760px){.editor{grid-template-columns:1fr}main{padding:.6rem}th,td{padding:.35rem}header.top nav{order:3;flex-basis:100%}}
.login{max-width:26rem;margin:8vh auto}
.flash[role=status]{position:sticky;top:0;z-index:5;box-shadow:0 2px 6px rgba(0,0,0,.08)}
h2[id],section[id]{scroll-margin-top:4rem}
.card>h2:first-child{margin-top:0}
.toolbar{margin:0 0 1rem}.spaced{margin-top:.8rem}
textarea.short{min-height:8rem}
pre.tail{max-height:6rem;margin:.2rem 0}
fieldset.target{border:1px solid var(--line);border-radius:4px;padding:.4rem .8rem .6rem}
fieldset.target legend{font-weight:600;padding:0 .3rem}
label.choice{font-weight:400;margin:.35rem 0;display:flex;gap:.4rem;align-items:baseline;flex-wrap:wrap}
details.confirm{display:inline-block}details.confirm>summary{list-style:none}details.confirm>summary::-webkit-details-marker{display:none}
details.confirm[open]>summary{opacity:.7}
.confirm-box{margin-top:.5rem;padding:.6rem .8rem;border:1px solid #f3b0b0;background:#fff6f6;border-radius:4px;max-width:34rem}
.confirm-box form{margin:.4rem 0 0}
nav.tabs{display:flex;flex-wrap:wrap;gap:.2rem;border-bottom:1px solid var(--line);margin:0 0 1rem}
nav.tabs a{padding:.35rem .7rem;border:1px solid transparent;border-bottom:none;border-radius:4px 4px 0 0}
nav.tabs a.on{background:var(--card);border-color:var(--line);color:var(--fg);font-weight:600;margin-bottom:-1px}
.badge.state-applied{background:#dcf5e3;color:var(--ok);border-color:#a6e0b6}
.badge.state-failed{background:#fde2e2;color:var(--bad);border-color:#f3b0b0}
.badge.state-pending{background:#fff4d6;color:var(--warn);border-color:#f0d58a}
.badge.state-offline{background:#eceff3;color:#667}
svg .state-applied{fill:#2da44e}svg .state-failed{fill:#d1242f}svg .state-pending{fill:#d4a72c}svg .state-offline{fill:#a3abb8}
svg .track{fill:#eef1f6}svg .fill{fill:var(--accent)}
svg.strip{display:block;width:100%;height:1.1rem;border-radius:3px;overflow:hidden;margin:.3rem 0 .6rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr));gap:0 1rem}
table.bars{background:none}table.bars th,table.bars td{border:none;padding:.2rem .3rem;vertical-align:middle}
table.bars th{text-transform:none;letter-spacing:0;font-size:.9rem;color:var(--fg);font-weight:400;width:40%;word-break:break-word}
table.bars .bar-cell{width:50%}table.bars .num{width:10%;text-align:right;font-variant-numeric:tabular-nums}
svg.bar{display:block;width:100%;height:.9rem}
ul.legend{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
ol.timeline{list-style:none;margin:0;padding:0 0 0 1.1rem;border-left:2px solid var(--line)}
ol.timeline li{position:relative;margin:0 0 .8rem;display:grid;grid-template-columns:11.5rem 1fr;gap:.2rem 1rem}
ol.timeline li::before{content:"";position:absolute;left:-1.55rem;top:.35rem;width:.7rem;height:.7rem;border-radius:50%;background:var(--accent);border:2px solid #fff}
ol.timeline li.groups::before{background:#8a63d2}ol.timeline li.rollback::before{background:#d4a72c}
ol.timeline time{font-size:.85rem;color:var(--muted);font-variant-numeric:tabular-nums}
@media (max-width:760px){ol.timeline li{grid-template-columns:1fr}table.bars th{width:45%}}
.badge.rollout-running{background:#e7f0ff;color:var(--accent);border-color:#b8cdf5}.badge.rollout-paused,.badge.rollout-halted{background:#fff4d6;color:var(--warn);border-color:#f0d58a}
.badge.rollout-completed{background:#dcf5e3;color:var(--ok);border-color:#a6e0b6}.badge.rollout-rolled_back,.badge.rollout-aborted{background:#fde2e2;color:var(--bad);border-color:#f3b0b0}
table.bars.waves th{width:22%}table.bars.waves .bar-cell{width:48%}table.bars.waves .num{width:30%;text-align:left}table.bars.waves tr.current th{font-weight:600}
table.bars.waves svg.bar{height:1.2rem}
`;

/** The favicon: a small SVG (Chromium and Firefox take SVG at /favicon.ico; nothing to fetch elsewhere). */
export const faviconSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1d2330"/><path d="M9 9h14M9 16h10M9 23h14" stroke="#7da2ff" stroke-width="3" stroke-linecap="round"/></svg>`;

/**
 * Three behaviours need script: inserting a built-in variable at the cursor of the content editor,
 * refreshing the clients and rollout screens on their own (paused while the user types in a form on it or has a confirm step open), and
 * bringing a form's error into view when a page comes back with one (it may sit far below the top).
 * Everything works without it, only less conveniently.
 */
export const consoleJs = `
document.addEventListener("click", function (e) {
  var b = e.target.closest && e.target.closest("[data-insert]");
  if (!b) return;
  e.preventDefault();
  var t = document.getElementById(b.getAttribute("data-target") || "content");
  if (!t) return;
  var v = b.getAttribute("data-insert"), s = t.selectionStart || 0, en = t.selectionEnd || 0;
  t.value = t.value.slice(0, s) + v + t.value.slice(en);
  t.focus();
  t.selectionStart = t.selectionEnd = s + v.length;
});
(function () {
  var el = document.querySelector("[data-refresh]");
  if (!el) return;
  var secs = Number(el.getAttribute("data-refresh")) || 10;
  setInterval(function () {
    var a = document.activeElement;
    if (a && /INPUT|SELECT|TEXTAREA/.test(a.tagName)) return;
    if (document.querySelector("details.confirm[open]")) return;
    location.reload();
  }, secs * 1000);
})();
(function () {
  var err = document.querySelector(".field-error[role=alert], .flash.error[role=alert]");
  if (!err) return;
  err.scrollIntoView({ block: "center" });
  var field = err.previousElementSibling;
  if (field && /INPUT|SELECT|TEXTAREA/.test(field.tagName)) field.focus({ preventScroll: true });
})();
`;
