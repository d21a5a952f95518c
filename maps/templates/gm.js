/* geo_monitor map runtime: a hexagon layer restyled per time step (or group) with a fixed
 * colour scale, its slider, legends, a bilingual switch and an optional basemap that is
 * added only when its tile server answers. Plain Leaflet 1.9, no other library. */
(function () {
  "use strict";
  var gm = (window.gm = window.gm || {});

  gm.lang = function () {
    return document.documentElement.getAttribute("data-gm-lang") || "fr";
  };
  gm.esc = function (text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  };
  /* A label is a string or {fr, en}: text in the current language. */
  gm.t = function (label) {
    if (label && typeof label === "object") return label[gm.lang()] || label.fr || label.en || "";
    return label == null ? "" : String(label);
  };
  /* Both languages as HTML; the stylesheet shows the current one. */
  gm.bi = function (label) {
    if (label && typeof label === "object") {
      return '<span class="gm-fr">' + gm.esc(label.fr) + '</span><span class="gm-en">' + gm.esc(label.en) + "</span>";
    }
    return gm.esc(label);
  };
  gm.fmt = function (value, digits) {
    if (value == null || isNaN(value)) return "–";
    return Number(value).toLocaleString(gm.lang() === "fr" ? "fr-FR" : "en-GB", {
      maximumFractionDigits: digits || 0,
      minimumFractionDigits: digits || 0,
    });
  };
  gm.pane = function (map, name, zIndex) {
    if (!map.getPane(name)) map.createPane(name).style.zIndex = zIndex;
    return name;
  };
  gm.control = function (map, position, id, className, html) {
    var Box = L.Control.extend({
      onAdd: function () {
        var div = L.DomUtil.create("div", "gm-box " + className);
        div.id = id;
        div.innerHTML = html;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      },
    });
    return new Box({ position: position }).addTo(map);
  };

  /* Colour of a value on a fixed scale: breaks are the lower bounds of the classes. */
  gm.colour = function (scale, value) {
    if (value == null) return null;
    if (value <= 0) return scale.zero;
    var i = scale.breaks.length - 1;
    while (i > 0 && value < scale.breaks[i]) i--;
    return scale.colors[i];
  };

  /* One polygon per cell, restyled in place when the frame changes (the compact equivalent
   * of one GeoJSON layer per step). data: cells, rings ([lat, lng] vertices), frames,
   * values (frames x cells, null = not shown), series (extra tooltip numbers). */
  gm.stepLayer = function (map, data, opts) {
    var pane = gm.pane(map, "gm-hex", 390);
    var renderer = L.canvas({ pane: pane, padding: 0.3 });
    var group = L.featureGroup();
    var current = opts.initial;
    function valueOf(name, t, i) {
      var s = name === "values" ? data.values : data.series[name];
      var row = Array.isArray(s[0]) ? s[t] : s;
      return row[i];
    }
    function tooltip(i) {
      var frame = data.frames[current];
      var html = "<b>" + gm.esc(gm.t(frame.label)) + "</b>";
      opts.tooltip.forEach(function (row) {
        var v = valueOf(row.series, current, i);
        var text = v == null ? gm.t(opts.nullLabel) : gm.fmt(v, row.digits);
        html += "<br>" + gm.esc(gm.t(row.label)) + " : <b>" + gm.esc(text) + "</b>";
      });
      return html + '<br><span class="gm-muted">' + gm.esc(gm.t(opts.cellLabel)) + " " + data.cells[i] + "</span>";
    }
    var polygons = data.rings.map(function (ring, i) {
      var polygon = L.polygon(ring, {
        renderer: renderer, pane: pane, weight: 0.5, color: "#ffffff", opacity: 0.9,
        fillOpacity: opts.fillOpacity,
      });
      polygon.bindTooltip(function () { return tooltip(i); }, { sticky: true });
      return polygon.addTo(group);
    });
    group.gmShow = function (t) {
      current = t;
      var values = data.values[t];
      polygons.forEach(function (polygon, i) {
        var v = values[i];
        var fill = gm.colour(opts.scale, v);
        polygon.setStyle(fill === null
          ? { fillColor: opts.scale.none, fillOpacity: opts.fillOpacity, dashArray: "3 3", color: "#737373" }
          : { fillColor: fill, fillOpacity: v > 0 ? opts.fillOpacity : opts.zeroOpacity, dashArray: null, color: "#ffffff" });
      });
      map.gmFrame = data.frames[t];
      map.fire("gmframe", { frame: data.frames[t], index: t });
      document.body.setAttribute("data-gm-frame", String(t));
    };
    group.gmFrames = data.frames;
    group.gmCurrent = function () { return current; };
    /* For tests and tools: where each cell's centre is on screen, and what it shows. */
    group.gmProbe = function () {
      return { frame: current, values: data.values[current], scale: opts.scale, fillOpacity: opts.fillOpacity,
        zeroOpacity: opts.zeroOpacity, onMap: map.hasLayer(group),
        points: polygons.map(function (p) { var xy = map.latLngToContainerPoint(p.getBounds().getCenter()); return [xy.x, xy.y]; }) };
    };
    (gm.stepLayers = gm.stepLayers || []).push(group);
    group.gmShow(current);
    return group;
  };

  /* A time slider (range input, previous/next, play) driving a step layer. */
  gm.slider = function (map, layer, title) {
    var frames = layer.gmFrames;
    var html = '<div class="gm-slider-title">' + gm.bi(title) + ' : <b class="gm-frame-label"></b></div>' +
      '<button type="button" class="gm-prev" aria-label="previous">&#9664;</button>' +
      '<input type="range" min="0" max="' + (frames.length - 1) + '" step="1" value="' + layer.gmCurrent() + '">' +
      '<button type="button" class="gm-next" aria-label="next">&#9654;</button>' +
      '<button type="button" class="gm-play">' + gm.bi({ fr: "lecture", en: "play" }) + "</button>";
    var box = gm.control(map, "bottomleft", "gm-slider", "gm-slider", html).getContainer();
    var input = box.querySelector("input"), label = box.querySelector(".gm-frame-label"), timer = null;
    function update() { label.textContent = gm.t(frames[layer.gmCurrent()].label); input.value = layer.gmCurrent(); }
    function go(t) { layer.gmShow(Math.max(0, Math.min(frames.length - 1, t))); update(); }
    input.addEventListener("input", function () { go(parseInt(input.value, 10)); });
    box.querySelector(".gm-prev").addEventListener("click", function () { go(layer.gmCurrent() - 1); });
    box.querySelector(".gm-next").addEventListener("click", function () { go(layer.gmCurrent() + 1); });
    box.querySelector(".gm-play").addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; return; }
      if (layer.gmCurrent() === frames.length - 1) go(0);
      timer = setInterval(function () {
        if (layer.gmCurrent() >= frames.length - 1) { clearInterval(timer); timer = null; return; }
        go(layer.gmCurrent() + 1);
      }, 700);
    });
    document.addEventListener("gmlang", update);
    update();
  };

  /* Radio buttons choosing a frame (the public map's groups). */
  gm.frameChoice = function (map, layer, title) {
    var html = '<div class="gm-slider-title">' + gm.bi(title) + "</div>";
    layer.gmFrames.forEach(function (frame, t) {
      html += '<label><input type="radio" name="gm-frame" value="' + t + '"' +
        (t === layer.gmCurrent() ? " checked" : "") + "> " + gm.bi(frame.label) + "</label><br>";
    });
    var box = gm.control(map, "topleft", "gm-frames", "gm-frames", html).getContainer();
    box.querySelectorAll("input").forEach(function (input) {
      input.addEventListener("change", function () { layer.gmShow(parseInt(input.value, 10)); });
    });
  };

  /* Works sites drawn with their periods: bold while active in the current frame. */
  gm.periodLayer = function (map, geojson, opts) {
    var layer = L.geoJSON(geojson, {
      style: function () { return opts.active; },
      onEachFeature: function (feature, l) {
        l.bindTooltip(function () {
          var p = feature.properties;
          return "<b>" + gm.esc(gm.t(opts.title)) + " " + gm.esc(p.id) + "</b><br>" + gm.esc(p.purpose || "") +
            (p.street ? "<br>" + gm.esc(p.street) : "") + "<br>" + gm.esc(p.starts || "?") + " → " + gm.esc(p.ends || "?");
        }, { sticky: true });
      },
    });
    function sync(frame) {
      layer.eachLayer(function (l) {
        var p = l.feature.properties;
        var active = !frame || ((!p.starts || p.starts < frame.end) && (!p.ends || p.ends >= frame.start));
        l.setStyle(active ? opts.active : opts.inactive);
      });
    }
    map.on("gmframe", function (e) { sync(e.frame); });
    sync(map.gmFrame);
    return layer;
  };

  /* Features styled by their own _style, with the (already escaped) HTML of _tip as tooltip. */
  gm.featureLayer = function (map, geojson, opts) {
    var pane = opts.pane ? gm.pane(map, opts.pane, opts.zIndex) : "overlayPane";
    return L.geoJSON(geojson, {
      pane: pane,
      style: function (feature) { return feature.properties._style; },
      onEachFeature: function (feature, layer) {
        if (feature.properties._tip) layer.bindTooltip(feature.properties._tip, { sticky: true });
      },
    });
  };

  /* Legends, one section per layer, hidden while that layer is off. */
  gm.legend = function (map, sections) {
    var html = "";
    sections.forEach(function (section, s) {
      html += '<div class="gm-legend-section" data-section="' + s + '"><div class="gm-legend-title">' + gm.bi(section.title) + "</div>";
      section.items.forEach(function (item) {
        html += '<div class="gm-legend-item"><span class="gm-swatch' + (item.dashed ? " gm-dashed" : "") +
          '" style="background:' + item.color + (item.border ? ";border-color:" + item.border : "") + '"></span>' + gm.bi(item.label) + "</div>";
      });
      html += "</div>";
    });
    var box = gm.control(map, "bottomright", "gm-legend", "gm-legend", html).getContainer();
    function refresh() {
      sections.forEach(function (section, s) {
        var layer = section.layer && window[section.layer];
        var shown = !section.layer || (layer && map.hasLayer(layer));
        box.querySelector('[data-section="' + s + '"]').style.display = shown ? "" : "none";
      });
    }
    map.on("overlayadd overlayremove layeradd layerremove", refresh);
    setTimeout(refresh, 0);
  };

  /* A panel of HTML (titles, notes, schedules). */
  gm.panel = function (map, position, id, html) {
    gm.control(map, position, id, "gm-panel", html);
  };

  /* The French / English switch: both texts are in the page, the stylesheet shows one. */
  gm.languages = function (map, initial) {
    function set(lang) {
      document.documentElement.setAttribute("data-gm-lang", lang);
      document.documentElement.setAttribute("lang", lang);
      var button = document.querySelector("#gm-lang button");
      if (button) button.textContent = lang === "fr" ? "English" : "Français";
      document.dispatchEvent(new Event("gmlang"));
    }
    gm.control(map, "topleft", "gm-lang", "gm-lang", '<button type="button"></button>');
    document.querySelector("#gm-lang button").addEventListener("click", function () {
      set(gm.lang() === "fr" ? "en" : "fr");
    });
    set(initial);
  };

  /* Online tiles only when the tile server answers one probe; otherwise the reference
   * layers alone, and the attribution says so. No tile request is made after a failed probe. */
  gm.basemap = function (map, opts, control) {
    if (!opts.url) {  // no basemap by choice: no request leaves the page
      map.attributionControl.addAttribution(gm.bi(opts.none));
      document.body.setAttribute("data-gm-basemap", "none");
      return;
    }
    var done = false;
    var probe = new Image();
    function offline() {
      if (done) return;
      done = true;
      map.attributionControl.addAttribution(gm.bi(opts.offline));
      document.body.setAttribute("data-gm-basemap", "offline");
    }
    var timer = setTimeout(offline, opts.timeout);
    probe.onerror = function () { clearTimeout(timer); offline(); };
    probe.onload = function () {
      if (done) return;
      done = true;
      clearTimeout(timer);
      var tiles = L.tileLayer(opts.url, { attribution: opts.attribution, maxZoom: opts.maxZoom, subdomains: opts.subdomains });
      tiles.addTo(map).bringToBack();
      if (control) control.addBaseLayer(tiles, gm.bi(opts.name));
      document.body.setAttribute("data-gm-basemap", "online");
    };
    probe.src = opts.probe;
  };

  gm.fit = function (map, layerName) {
    var layer = window[layerName];
    if (layer && layer.getBounds && layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [8, 8] });
  };

  gm.ready = function () {
    document.body.setAttribute("data-gm-ready", "1");
  };
})();
