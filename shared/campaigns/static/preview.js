// The back office's preview: renders each sample step's experiences (the decision engine's
// answers, in the page's <script type="application/json" id="preview-data"> block) with
// the demo shop's own widget (/assets/widget.js), so that the markup is the shop's.
(function () {
  'use strict';
  const data = document.getElementById('preview-data');
  const widget = window.cartwiseWidget;
  if (!data || !widget) return;
  const steps = JSON.parse(data.textContent || '[]');
  steps.forEach(function (step, index) {
    const slot = document.querySelector('.slot[data-sample="' + index + '"]');
    if (!slot) return;
    slot.textContent = '';
    const shown = step.experiences || [];
    if (!shown.length) {
      const none = document.createElement('p');
      none.className = 'muted';
      none.textContent = 'Nothing shown at this step.';
      slot.appendChild(none);
      return;
    }
    for (const experience of shown) {
      const element = experience.type === 'gamified_promotion'
        ? widget.invitationNode(experience)
        : widget.experienceNode(experience);
      element.querySelectorAll('button').forEach(function (button) { button.disabled = true; });
      slot.appendChild(element);
    }
  });
  document.body.setAttribute('data-preview-ready', 'true');
})();
