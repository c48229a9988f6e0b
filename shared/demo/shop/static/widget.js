// The cartwise widget: one experience, as the shopper sees it. The demo shop renders its
// experiences with it, and the back office's preview will render a campaign's creative
// with the same file (and shop.css), so it stands alone: a classic script, no module, no
// global of the page's but the one it defines:
//
//   window.cartwiseWidget.experienceNode(experience, lookup) -> HTMLElement
//   window.cartwiseWidget.invitationNode(experience)         -> HTMLElement (a game's)
//
// `experience` is a shown experience of GET /v1/experiences ({experience_id, type,
// campaign_id, details}); `lookup` (optional) names products: {nameOf(id) -> string,
// product(id) -> {product_id, unit_price} | null}. Without it a product is "product <id>",
// without a price and without an "Add it" button.
//
// The node: the campaign's creative first when `details.creative` is there (an <img> of an
// http(s) URL only, alt = the title; a <strong> title; a <p> text), then the type's own
// lines. Buttons carry data attributes and no handler: the page attaches its own
// ("Add it": button[data-add] = the product id; a game's "Play": button[data-play]).
// Everything the servers send goes in with textContent and setAttribute, never innerHTML.
(function () {
  'use strict';

  function node(tag, options, text) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(options || {})) {
      if (name === 'className') element.className = value;
      else if (name === 'dataset') Object.assign(element.dataset, value);
      else element.setAttribute(name, value);
    }
    if (text != null) element.textContent = String(text);
    return element;
  }

  const euros = (value) => Number(value).toFixed(2);

  // Only absolute http(s) URLs become an image source (never javascript:, data:, ...).
  function isHttpUrl(value) {
    return typeof value === 'string' && /^https?:\/\/[^\s]+$/i.test(value.trim());
  }

  function box(experience) {
    return node('div', {
      className: 'experience',
      dataset: { experienceId: String(experience.experience_id), experienceType: String(experience.type) },
    });
  }

  // The campaign's creative (details.creative: {title, text, image_url}), if it has one.
  function appendCreative(element, details) {
    const creative = details.creative;
    if (!creative || typeof creative !== 'object' || typeof creative.title !== 'string') return false;
    element.dataset.creative = 'true';
    if (isHttpUrl(creative.image_url)) {
      element.appendChild(node('img', {
        className: 'creative-image',
        src: creative.image_url.trim(),
        alt: creative.title,
        loading: 'lazy',
        referrerpolicy: 'no-referrer', // the shop's page address is not the brand's business
      }));
    }
    element.appendChild(node('strong', { className: 'creative-title' }, creative.title));
    if (typeof creative.text === 'string' && creative.text) {
      element.appendChild(node('p', { className: 'creative-text' }, creative.text));
    }
    return true;
  }

  // The type's heading: the first line, or the second (under the creative) when there is one.
  function heading(element, text, underCreative) {
    element.appendChild(node(underCreative ? 'p' : 'strong', { className: 'headline' }, text));
  }

  function lookups(lookup) {
    const given = lookup || {};
    const product = (id) => (typeof given.product === 'function' ? given.product(String(id)) || null : null);
    const nameOf = (id) => {
      if (typeof given.nameOf === 'function') return given.nameOf(String(id));
      const found = product(id);
      return found && found.name ? found.name : 'product ' + id;
    };
    return { product, nameOf };
  }

  function invitationNode(experience) {
    const d = experience.details || {};
    const element = box(experience);
    const creative = appendCreative(element, d);
    heading(element, 'You can play and win!', creative);
    element.appendChild(node('p', {}, 'Your order ' + d.order_id + ' (' + euros(d.qualifying_amount) + ' € of qualifying products) gives you one game.'));
    element.appendChild(node('button', { type: 'button', className: 'play', dataset: { play: '' } }, 'Play'));
    return element;
  }

  function experienceNode(experience, lookup) {
    const d = experience.details || {};
    const { product, nameOf } = lookups(lookup);
    if (experience.type === 'gamified_promotion') return invitationNode(experience);
    const element = box(experience);
    const creative = appendCreative(element, d);
    switch (experience.type) {
      case 'product_recommendation': {
        heading(element, d.because_of ? 'Goes well with your ' + nameOf(d.because_of) : 'For you', creative);
        const found = product(d.product_id);
        element.appendChild(node('p', {}, nameOf(d.product_id) + (found ? ' — ' + euros(found.unit_price) + ' €' : '')));
        if (found) {
          element.appendChild(node('button', { type: 'button', className: 'add', dataset: { add: String(found.product_id) } }, 'Add it'));
        }
        return element;
      }
      case 'personalized_promotion':
        element.dataset.unlocked = String(Boolean(d.unlocked));
        heading(element, d.generosity_pct + '% off, just for you', creative);
        element.appendChild(node('p', {}, d.unlocked
          ? 'Applied to ' + (d.in_basket || []).length + ' product(s) in your basket'
          : 'On selected products from ' + euros(d.threshold) + ' € (you have ' + euros(d.basket_value) + ' €)'));
        return element;
      case 'tension_cart':
        element.dataset.unlocked = String(Boolean(d.unlocked));
        element.dataset.missing = String(d.missing);
        heading(element, d.unlocked
          ? 'You unlocked ' + d.reward + '!'
          : 'Add ' + euros(d.missing) + ' € more to get ' + d.reward, creative);
        element.appendChild(node('p', {}, euros(d.basket_value) + ' € of ' + euros(d.threshold) + ' €'));
        return element;
      default:
        heading(element, String(experience.type).replace(/_/g, ' '), creative);
        return element;
    }
  }

  window.cartwiseWidget = Object.freeze({ experienceNode, invitationNode });
})();
