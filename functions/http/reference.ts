/** A self-contained API reference page (no CDN): renders /api/v1/openapi.json in the browser. */
export const referencePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>edgeconf API reference</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:12px 20px}main{max-width:1000px;margin:0 auto;padding:16px}
details{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px 12px;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:64px;font-weight:700}.get{color:#1b7f3b}.post{color:#1f5fbf}.put{color:#8a5a00}.patch{color:#7a3ea8}.delete{color:#b3261e}
pre{background:#f0f2f5;padding:8px;overflow:auto;margin:0 12px 12px}h2{margin:20px 0 6px;font-size:16px}p{margin:4px 12px}
</style></head><body><header><b>edgeconf</b> API reference — <a style="color:#9cc3ff" href="/api/v1/openapi.json">openapi.json</a></header>
<main id="root">Loading…</main>
<script>
fetch('/api/v1/openapi.json').then(r=>r.json()).then(doc=>{
  const root=document.getElementById('root');root.textContent='';
  const byTag={};
  for(const [p,ops] of Object.entries(doc.paths||{}))for(const [m,op] of Object.entries(ops)){const t=(op.tags||['other'])[0];(byTag[t]=byTag[t]||[]).push([m,p,op]);}
  for(const [tag,list] of Object.entries(byTag)){
    const h=document.createElement('h2');h.textContent=tag;root.appendChild(h);
    for(const [m,p,op] of list){
      const d=document.createElement('details');const s=document.createElement('summary');
      const b=document.createElement('span');b.className='m '+m;b.textContent=m.toUpperCase();s.appendChild(b);s.appendChild(document.createTextNode(' '+p));d.appendChild(s);
      if(op.description){const e=document.createElement('p');e.textContent=op.description;d.appendChild(e);}
      const pre=document.createElement('pre');pre.textContent=JSON.stringify({parameters:op.parameters,requestBody:op.requestBody,responses:op.responses},null,2);d.appendChild(pre);
      root.appendChild(d);
    }
  }
  const s=document.createElement('h2');s.textContent='schemas';root.appendChild(s);
  const pre=document.createElement('pre');pre.textContent=JSON.stringify((doc.components||{}).schemas||{},null,2);root.appendChild(pre);
});
</script></body></html>`;
