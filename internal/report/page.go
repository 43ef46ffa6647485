package report

// pageHTML is the report template. It must stay self-contained: no
// external stylesheet, script, font or image.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{.Title}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1f24;margin:0 auto;max-width:980px;padding:24px}
h1{font-size:1.6em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;margin:.4em 0}th,td{padding:4px 10px;border-bottom:1px solid #e5e8eb;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.supp{display:inline-block;padding:0 6px;border:1px dashed #8c959f;border-radius:4px;background:repeating-linear-gradient(45deg,#f0f1f3,#f0f1f3 4px,#e1e4e8 4px,#e1e4e8 8px);color:#57606a;font-style:italic}
.missing{color:#57606a;font-style:italic}
.big{font-size:2.2em;font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.sig-verified{background:#dafbe1;color:#116329}.sig-failed{background:#ffebe9;color:#a40e26}.sig-not-checked{background:#fff8c5;color:#7d4e00}
.note{color:#57606a;font-size:.92em;max-width:75ch}
svg text{font-family:inherit}
details{margin:.5em 0}
footer{margin-top:2.5em;color:#57606a;font-size:.85em}
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="note">Aggregate results of a private set intersection: no record-level data is in this page{{if .Members}}, except that this party's Result lists {{.Members}} of its own record ids as members (not shown){{end}}.</p>
</header>

<section aria-labelledby="s-overview">
<h2 id="s-overview">Session</h2>
<table>{{range .Rows}}<tr><th scope="row">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
</section>

<section aria-labelledby="s-signature">
<h2 id="s-signature">Signature</h2>
<p><span class="badge sig-{{.SigClass}}" data-k="signature">{{.Signature.Status}}</span>
{{with .Signature.Signer}} signed by <strong>{{.}}</strong>{{end}}</p>
{{with .Signature.Detail}}<p class="note">{{.}}</p>{{end}}
</section>

<section aria-labelledby="s-parties">
<h2 id="s-parties">Parties</h2>
<table><thead><tr><th scope="col">Party</th><th scope="col" class="n">Records (after de-duplication)</th></tr></thead><tbody>
{{range .Parties}}<tr><th scope="row">{{.Name}}{{if .LeftOut}} <span class="missing">(left out of the aggregates)</span>{{end}}</th><td class="n">{{template "cell" .Size}}</td></tr>
{{end}}</tbody></table>
</section>

<section aria-labelledby="s-intersection">
<h2 id="s-intersection">Shared by all parties</h2>
<p class="big">{{template "cell" .Intersection}}</p>
{{if .Intersection.Suppressed}}<p class="note">The intersection is below min_cell: it is suppressed, and so is everything derived from it (every aggregate and every off-diagonal pairwise cell).</p>{{end}}
</section>

{{with .Matrix}}
<section aria-labelledby="s-pairwise">
<h2 id="s-pairwise">Pairwise overlaps</h2>
<p class="note">Cell (row, column) is the number of records the two parties share; the diagonal is each party's record count after de-duplication (public, never suppressed). Colour: count relative to the largest cell ({{.Max}}). Hatched cells are suppressed (below min_cell), not zero.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-labelledby="pairwise-title">
<title id="pairwise-title">Heat map of pairwise overlaps between {{len .Parties}} parties</title>
<defs><pattern id="hatch-matrix" patternUnits="userSpaceOnUse" width="8" height="8" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f0f1f3"/><line x1="0" y1="0" x2="0" y2="8" stroke="#b5bcc4" stroke-width="3"/></pattern></defs>
{{range .Labels}}{{if .Rotate}}<text x="{{.X}}" y="{{.Y}}" transform="rotate(-40 {{.X}} {{.Y}})" font-size="13" text-anchor="start">{{.Text}}</text>{{else}}<text x="{{.X}}" y="{{.Y}}" font-size="13" text-anchor="end">{{.Text}}</text>{{end}}
{{end}}{{range .Cells}}<g><title>{{.Title}}</title><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}"{{if .Diagonal}} stroke="#1b1f24" stroke-width="1.5"{{end}}/><text x="{{.TX}}" y="{{.TY}}" text-anchor="middle" font-size="{{.FontSizeText}}" fill="{{.Ink}}"{{if .Suppressed}} font-style="italic"{{end}} data-k="{{.Key}}">{{.Text}}</text></g>
{{end}}</svg>
<details><summary>The matrix as a table</summary>
<table><thead><tr><th scope="col"></th>{{range .Parties}}<th scope="col" class="n">{{.}}</th>{{end}}</tr></thead><tbody>
{{range $i, $row := .Rows}}<tr><th scope="row">{{index $.Matrix.Parties $i}}</th>{{range $row}}<td class="n">{{template "cell" .}}</td>{{end}}</tr>
{{end}}</tbody></table></details>
</section>
{{end}}

{{if .Scalars}}
<section aria-labelledby="s-aggregates">
<h2 id="s-aggregates">Aggregates</h2>
<p class="note">Computed over the records shared by all parties. Means and variances state how many values contributed.</p>
<table><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col" class="n">Value</th><th scope="col" class="n">Contributions</th><th scope="col">Definition</th></tr></thead><tbody>
{{range .Scalars}}<tr><th scope="row">{{.Name}}</th><td>{{.Kind}}</td><td class="n">{{template "cell" .Value}}</td><td class="n">{{with .Contributions}}{{template "cell" .}}{{else}}<span class="missing">—</span>{{end}}</td><td class="note">{{.Describe}}</td></tr>
{{end}}</tbody></table>
</section>
{{end}}

{{range .Histograms}}
<section aria-labelledby="{{.ID}}">
<h2 id="{{.ID}}">Histogram {{.Name}}</h2>
{{with .Describe}}<p class="note">{{.}}</p>{{end}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-labelledby="{{.ID}}-title">
<title id="{{.ID}}-title">{{.Summary}}</title>
<defs><pattern id="hatch-{{.ID}}" patternUnits="userSpaceOnUse" width="8" height="8" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f0f1f3"/><line x1="0" y1="0" x2="0" y2="8" stroke="#b5bcc4" stroke-width="3"/></pattern></defs>
{{$id := .ID}}{{$base := .Baseline}}
{{range .Ticks}}<line x1="56" x2="624" y1="{{.Y}}" y2="{{.Y}}" stroke="#e5e8eb"/><text x="50" y="{{.Y}}" dy="4" text-anchor="end" font-size="11" fill="#57606a">{{.Text}}</text>
{{end}}<line x1="56" x2="624" y1="{{$base}}" y2="{{$base}}" stroke="#57606a"/>
{{range .Bars}}<g><title>{{.Label}}: {{.Text}}</title>{{if .Suppressed}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="url(#hatch-{{$id}})" stroke="#8c959f" stroke-dasharray="3 2"/><text x="{{.LabelX}}" y="{{.ValueY}}" text-anchor="middle" font-size="12" font-style="italic" fill="#57606a" data-k="{{.Key}}">{{.Text}}</text>{{else}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="#2f6db5"/><text x="{{.LabelX}}" y="{{.ValueY}}" text-anchor="middle" font-size="12" fill="#1b1f24" data-k="{{.Key}}">{{.Text}}</text>{{end}}<text x="{{.LabelX}}" y="{{.LabelY}}" text-anchor="middle" font-size="12" fill="#1b1f24">{{.Label}}</text></g>
{{end}}</svg>
<details><summary>{{.Name}} as a table</summary>
<table><thead><tr><th scope="col">Bin</th><th scope="col" class="n">Count</th></tr></thead><tbody>
{{range .Bars}}<tr><th scope="row">{{.Label}}</th><td class="n">{{template "cell" .}}</td></tr>
{{end}}</tbody></table></details>
</section>
{{end}}

{{if .Params}}
<section aria-labelledby="s-privacy">
<h2 id="s-privacy">Privacy parameters</h2>
<p class="note">The spec's <code>privacy</code> settings and every field of the Result this page does not draw elsewhere (such as the noise mechanism and the epsilon spent per aggregate), as released.</p>
<table><thead><tr><th scope="col">Where</th><th scope="col">Parameter</th><th scope="col">Value</th></tr></thead><tbody>
{{range .Params}}<tr><td>{{.Source}}</td><td><code>{{.Key}}</code></td><td data-k="param/{{.Source}}/{{.Key}}">{{.Value}}</td></tr>
{{end}}</tbody></table>
</section>
{{end}}

<footer>{{.Footer}}</footer>
</body>
</html>
{{define "cell"}}{{if .Suppressed}}<span class="supp" data-k="{{.Key}}" title="suppressed: below min_cell (not zero)">{{.Text}}</span>{{else if .Missing}}<span class="missing"{{with .Key}} data-k="{{.}}"{{end}}>{{.Text}}</span>{{else}}<span data-k="{{.Key}}">{{.Text}}</span>{{end}}{{end}}
`
