'use strict';
// The quote list's asset filter: picking an asset in the autocomplete reloads the list with it.
window.addEventListener('load', function() {
    const $ = django.jQuery;
    const select = $('#asset-filter');
    select.on('change', function() {
        const params = new URLSearchParams(window.location.search);
        const name = select.data('param');
        params.delete('p');
        if (select.val()) { params.set(name, select.val()); } else { params.delete(name); }
        window.location.search = params.toString();
    });
});
