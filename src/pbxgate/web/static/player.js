/* pbxgate: the call recording player (templates/recordings.html). No dependencies.
   Buttons and keys: -10 s / +10 s, play/pause, speed. Keys are left alone while the focus is
   in a form field, and Space is left to a focused button or link. */
(function () {
  "use strict";
  var audio = document.getElementById("player-audio");
  if (!audio) {
    return;
  }
  var speed = document.getElementById("player-speed");
  var status = document.getElementById("player-status");
  var STEP = 10;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function clock(seconds) {
    var whole = Math.max(0, Math.floor(seconds));
    var secs = whole % 60;
    return Math.floor(whole / 60) + ":" + (secs < 10 ? "0" : "") + secs;
  }

  function skip(delta) {
    var end = isFinite(audio.duration) ? audio.duration : Infinity;
    audio.currentTime = Math.min(Math.max(0, audio.currentTime + delta), end);
    say(clock(audio.currentTime));
  }

  function setRate(value) {
    // Both: loading the file resets playbackRate to defaultPlaybackRate.
    audio.defaultPlaybackRate = value;
    audio.playbackRate = value;
    speed.value = String(value);
    say(value + "×");
  }

  function stepRate(direction) {
    var options = Array.prototype.map.call(speed.options, function (o) { return o.value; });
    var next = options.indexOf(speed.value) + direction;
    if (next >= 0 && next < options.length) {
      setRate(parseFloat(options[next]));
    }
  }

  function toggle() {
    if (audio.paused) {
      audio.play();
    } else {
      audio.pause();
    }
  }

  document.getElementById("player-back").addEventListener("click", function () { skip(-STEP); });
  document.getElementById("player-forward").addEventListener("click", function () { skip(STEP); });
  speed.addEventListener("change", function () { setRate(parseFloat(speed.value)); });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) {
      return;
    }
    var target = event.target;
    var tag = target && target.tagName ? target.tagName : "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || target.isContentEditable) {
      return;
    }
    var onControl = tag === "BUTTON" || tag === "A" || tag === "AUDIO";
    switch (event.key) {
      case " ":
        if (onControl) {
          return;  // the focused control's own Space
        }
        toggle();
        break;
      case "k":
        toggle();
        break;
      case "j":
        skip(-STEP);
        break;
      case "l":
        skip(STEP);
        break;
      case "ArrowLeft":
      case "ArrowRight":
        if (tag === "AUDIO") {
          return;  // the native controls seek on their own
        }
        skip(event.key === "ArrowLeft" ? -STEP : STEP);
        break;
      case "[":
        stepRate(-1);
        break;
      case "]":
        stepRate(1);
        break;
      default:
        return;
    }
    event.preventDefault();
  });
})();
