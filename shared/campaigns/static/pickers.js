// The campaign form's catalogue pickers: under each targeting field marked
// data-picker="products|brands|categories", a search box whose results come from
// GET /catalogue/<kind>?q=&page=&retailers= (this origin, the session's cookie); picking a
// result adds it to the field's comma-separated list. Without this script the fields
// still take typed values (the server checks them and suggests the nearest known ones).
(function () {
  'use strict';

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === 'className') node.className = value;
      else node.setAttribute(name, value);
    }
    if (text != null) node.textContent = String(text);
    return node;
  }

  function values(field) {
    return field.value.split(',').map(function (v) { return v.trim(); }).filter(Boolean);
  }

  function add(field, value) {
    const current = values(field);
    if (current.indexOf(value) === -1) current.push(value);
    field.value = current.join(', ');
    field.dispatchEvent(new Event('change', { bubbles: true }));
  }

  function label(kind, item) {
    if (kind !== 'products') return item.name + ' (' + item.seen + ')';
    const more = [item.brand, item.category].filter(Boolean).join(', ');
    return item.product_id + (more ? ' – ' + more : '');
  }

  function picker(field) {
    const kind = field.getAttribute('data-picker');
    const form = field.form;
    const box = el('div', { className: 'picker', 'data-picker-for': field.id });
    const searchId = field.id + '-search';
    box.appendChild(el('label', { for: searchId }, 'Search the catalogue (' + kind + ')'));
    const input = el('input', { id: searchId, type: 'search', autocomplete: 'off',
      'aria-controls': field.id + '-results' });
    const status = el('p', { className: 'muted', role: 'status', id: field.id + '-status' });
    const list = el('ul', { id: field.id + '-results', 'aria-label': kind + ' found' });
    const more = el('button', { type: 'button', id: field.id + '-more', hidden: 'hidden' }, 'More results');
    box.append(input, status, list, more);
    field.insertAdjacentElement('afterend', box);

    let page = 1;
    let timer = null;
    let sequence = 0;

    async function search(reset) {
      if (reset) { page = 1; list.textContent = ''; }
      const retailers = form && form.elements.retailer_ids ? form.elements.retailer_ids.value : '';
      const url = '/catalogue/' + kind + '?' + new URLSearchParams({
        q: input.value.trim(), page: String(page), retailers: retailers,
      });
      const mine = ++sequence;
      status.textContent = 'Searching…';
      let answer;
      try {
        const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        answer = await response.json();
        if (!response.ok) throw new Error((answer.error && answer.error.message) || response.status);
      } catch (error) {
        if (mine === sequence) status.textContent = 'The search failed: ' + error.message;
        return;
      }
      if (mine !== sequence) return; // a newer search is under way
      if (!retailers.trim()) status.textContent = 'Type the campaign\'s retailers first.';
      else status.textContent = (answer.items.length || page > 1) ? '' : 'Nothing found.';
      for (const item of answer.items) {
        const value = kind === 'products' ? item.product_id : item.name;
        const button = el('button', { type: 'button', 'data-value': value }, label(kind, item));
        button.addEventListener('click', function () { add(field, value); });
        const li = el('li');
        li.appendChild(button);
        list.appendChild(li);
      }
      more.hidden = !answer.has_next;
    }

    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { search(true); }, 250);
    });
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') { event.preventDefault(); clearTimeout(timer); search(true); }
    });
    more.addEventListener('click', function () { page += 1; search(false); });
  }

  document.querySelectorAll('input[data-picker]').forEach(picker);
})();
