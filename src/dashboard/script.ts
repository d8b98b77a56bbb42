/**
 * The dashboard's only script (served at /_waymark/dashboard/app.js, so the page's CSP allows no
 * inline script): every 5 s, fetch the page's `main` again and swap it in, unless the page has none to
 * refresh, is hidden, or the operator is filling in a form.
 */
export const REFRESH_SCRIPT = `(() => {
  const edited = (m) => [...m.querySelectorAll('input,select,textarea')].some((e) =>
    e.type === 'checkbox' ? e.checked !== e.defaultChecked
    : e.tagName === 'SELECT' ? [...e.options].some((o) => o.selected !== o.defaultSelected)
    : e.value !== e.defaultValue) || (document.activeElement && m.contains(document.activeElement) && document.activeElement.matches('input,select,textarea'));
  setInterval(async () => {
    const m = document.querySelector('main[data-refresh]');
    if (!m || document.hidden || edited(m)) return;
    const r = await fetch(location.href, { headers: { 'x-waymark-fragment': 'main' } }).catch(() => null);
    if (!r || !r.ok || r.redirected) return;
    const next = new DOMParser().parseFromString(await r.text(), 'text/html').querySelector('main');
    if (next && document.querySelector('main') === m && !edited(m)) m.replaceWith(next);
  }, 5000);
})();
`;
