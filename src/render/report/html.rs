//! The report's HTML: one page template (a header with the run's name, a
//! navigation bar, the body, and a check that every image loaded), escaping,
//! and small tables. No server, no network: one inline style sheet and one
//! inline script per page, every link relative.

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:0;color:#222;background:#fafafa}\
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}\
nav{background:#e9eef5;padding:8px 24px}nav a{margin-right:18px;color:#1d3557;font-weight:600;text-decoration:none}\
main{padding:16px 24px;max-width:1500px}h2{margin-top:28px;border-bottom:1px solid #ccd;padding-bottom:4px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccd;padding:4px 10px;text-align:left}th{background:#eef}\
td.num{text-align:right;font-variant-numeric:tabular-nums}.thumbs{display:flex;flex-wrap:wrap;gap:8px}\
.thumbs figure{margin:0;text-align:center;font-size:12px}.thumbs img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #bbb}\
.plots img{max-width:48%;margin-right:1%}.gallery figure{margin:0 0 24px}.gallery img{max-width:100%;border:1px solid #bbb}\
pre{background:#fff;border:1px solid #ccd;padding:10px;overflow:auto;max-height:420px}.pages a{margin-right:8px}\
#broken{display:none;background:#c1121f;color:#fff;padding:8px 24px}.gain-up{color:#2a7a2a}.gain-down{color:#b02020}";

/// Marks the body with the number of images that loaded and that did not
/// (`data-images-loaded`, `data-images-broken`), and shows a banner for the latter.
const CHECK: &str = "window.addEventListener('load',function(){var ok=0,bad=0;\
for(var i=0;i<document.images.length;i++){var im=document.images[i];if(im.complete&&im.naturalWidth>0){ok++}else{bad++}}\
document.body.setAttribute('data-images-loaded',ok);document.body.setAttribute('data-images-broken',bad);\
if(bad>0){var b=document.getElementById('broken');b.textContent=bad+' image(s) of this page are missing: was the report folder copied without its img/ folder?';b.style.display='block';}});";

/// A whole page: `title`, the run's `subtitle`, the navigation bar (links
/// relative to this page by `root`, the path from it to the report's root), `body`.
pub fn page(title: &str, subtitle: &str, root: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\n\
<body><header><h1>{t}</h1><p>{s}</p></header>\
<nav><a href=\"{root}index.html\">Summary</a><a href=\"{root}channels/by-gain-1.html\">Channels</a>\
<a href=\"{root}gallery.html\">Explanations</a></nav><div id=\"broken\"></div>\n<main>\n{body}\n</main>\
<script>{CHECK}</script></body></html>\n",
        t = escape(title),
        s = escape(subtitle),
    )
}

/// A table with a header row; cells are HTML already (escape text first).
/// Cells that parse as numbers are right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>");
    if header.iter().any(|h| !h.is_empty()) {
        s.push_str("<tr>");
        for h in header {
            s.push_str(&format!("<th>{}</th>", escape(h)));
        }
        s.push_str("</tr>");
    }
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let numeric =
                cell.trim_start_matches(['+', '-']).replace(['.', ' ', '%'], "").chars().all(|c| c.is_ascii_digit())
                    && !cell.is_empty();
            s.push_str(&format!("<td{}>{cell}</td>", if numeric { " class=\"num\"" } else { "" }));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}
